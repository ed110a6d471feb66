"""`sinklab train-tokenizer`: the written tokenizer.json against a naive BPE
trainer written here (ASCII text, where GPT-2's split regex needs no Unicode
classes), its vocabulary layout, overwrite protection and one-line errors."""
import collections
import json
import random
import re

from cli_util import assert_one_clear_error, run

# GPT-2's split regex with \p{L} / \p{N} narrowed to ASCII (exact for ASCII text).
GPT2_ASCII = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+")


def bytes_to_unicode():
    printable = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def naive_merges(text, n_merges):
    """Most frequent pair first; ties to the smaller (left id, right id)."""
    byte_char = bytes_to_unicode()
    tokens = sorted(byte_char.values())
    ids = {t: i for i, t in enumerate(tokens)}
    words = collections.Counter(GPT2_ASCII.findall(text))
    seqs = [([ids[byte_char[b]] for b in w.encode()], n) for w, n in words.items()]
    merges = []
    while len(merges) < n_merges:
        counts = collections.Counter()
        for seq, n in seqs:
            for pair in zip(seq, seq[1:]):
                counts[pair] += n
        best = min(counts, key=lambda p: (-counts[p], p))
        if counts[best] < 2:
            break
        merged = tokens[best[0]] + tokens[best[1]]
        if merged not in ids:
            ids[merged] = len(tokens)
            tokens.append(merged)
        merges.append(tokens[best[0]] + " " + tokens[best[1]])
        new_seqs = []
        for seq, n in seqs:
            out, i = [], 0
            while i < len(seq):
                if i + 1 < len(seq) and (seq[i], seq[i + 1]) == best:
                    out.append(ids[merged])
                    i += 2
                else:
                    out.append(seq[i])
                    i += 1
            new_seqs.append((out, n))
        seqs = new_seqs
    return merges


def ascii_corpus():
    rng = random.Random(5)
    words = ["the", "then", "there", "a", "and", "sand", "banana", "Elizabeth", "Darcy", "it's", "we'll",
             "1811", "42", "Mr.", "(said", "she)", "--", "rain", "train", "strain", "stained"]
    seps = [" ", " ", " ", ", ", ". ", "\n", "\n\n", "   "]
    return "".join(rng.choice(words) + rng.choice(seps) for _ in range(6000))


def test_trains_the_naive_merges_and_a_hugging_face_layout(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(ascii_corpus())
    out = tmp_path / "tokenizer.json"
    r = run("train-tokenizer", "-f", corpus, "--vocab", 330, "-o", out,
            "--special", "<|endoftext|>", "--special", "<pad>")
    assert r.returncode == 0, r.stderr
    assert f"wrote {out}: vocab 330 (2 special, 256 bytes, " in r.stdout
    j = json.loads(out.read_text(encoding="utf-8"))
    vocab, merges = j["model"]["vocab"], j["model"]["merges"]
    assert j["model"]["type"] == "BPE" and j["decoder"]["type"] == "ByteLevel"
    assert j["post_processor"] is None
    assert [(t["id"], t["content"], t["special"]) for t in j["added_tokens"]] == [
        (0, "<|endoftext|>", True), (1, "<pad>", True)]
    assert sorted(vocab.values()) == list(range(330))
    by_id = sorted(vocab, key=vocab.get)
    assert by_id[:2] == ["<|endoftext|>", "<pad>"]
    assert by_id[2:258] == sorted(bytes_to_unicode().values())
    for m in merges:
        left, right = m.split(" ")
        assert left + right in vocab
    assert merges == naive_merges(ascii_corpus(), len(merges))
    assert len(merges) >= 72  # 330 - 258 new tokens


O200K_REGEX = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
               r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
               r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def test_o200k_pattern_writes_the_gpt_oss_split(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(ascii_corpus())
    out = tmp_path / "tokenizer.json"
    r = run("train-tokenizer", "-f", corpus, "--vocab", 300, "-o", out, "--pattern", "o200k")
    assert r.returncode == 0, r.stderr
    split = json.loads(out.read_text(encoding="utf-8"))["pre_tokenizer"]["pretokenizers"][0]
    assert split == {"type": "Split", "pattern": {"Regex": O200K_REGEX}, "behavior": "Isolated", "invert": False}


def test_refuses_to_overwrite_without_force(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("hello hello hello world world\n")
    out = tmp_path / "tokenizer.json"
    out.write_text("keep me")
    r = run("train-tokenizer", "-f", corpus, "--vocab", 260, "-o", out)
    assert_one_clear_error(r, str(out), "--force")
    assert out.read_text() == "keep me"
    r = run("train-tokenizer", "-f", corpus, "--vocab", 260, "-o", out, "--force")
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["model"]["type"] == "BPE"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.txt", "tokenizer.json"]


def test_bad_input_gives_one_error_line(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("some text\n")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    out = tmp_path / "tok.json"
    assert_one_clear_error(run("train-tokenizer", "-f", tmp_path / "missing.txt", "-o", out), "missing.txt")
    assert_one_clear_error(run("train-tokenizer", "-f", empty, "-o", out), "empty")
    assert_one_clear_error(run("train-tokenizer", "-f", tmp_path, "-o", out), "directory")
    assert_one_clear_error(run("train-tokenizer", "-f", corpus, "-o", out, "--vocab", 100), "vocab_size")
    assert_one_clear_error(run("train-tokenizer", "-f", corpus, "-o", out, "--special", "x"), "special")
    assert_one_clear_error(run("train-tokenizer", "-f", corpus, "-o", out, "--pattern", "bert"), "--pattern")
    assert not out.exists()
