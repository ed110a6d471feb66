#!/usr/bin/python3
"""Splits texts with a tokenizer.json Split regex through the `regex` module
(a backtracking engine with \\p{..} classes, as the Rust and Oniguruma engines
of tiktoken and Hugging Face tokenizers): the reference the o200k scanner of
test_tokenizer_o200k.cpp is compared with.
Usage: split_regex_reference.py REGEX_FILE TEXTS_JSON OUT_JSON
(TEXTS_JSON: a list of strings; OUT_JSON: a list of lists of words.)"""
import json
import sys

import regex


def main():
    pattern = regex.compile(open(sys.argv[1], encoding="utf-8").read())
    texts = json.load(open(sys.argv[2], encoding="utf-8"))
    words = [pattern.findall(t) for t in texts]
    json.dump(words, open(sys.argv[3], "w", encoding="utf-8"), ensure_ascii=False)


if __name__ == "__main__":
    main()
