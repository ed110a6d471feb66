"""gpt-oss and Gemma 3 from the command line, in Hugging Face and GGUF form:
the tiny checkpoints of tests/reference/make_tiny_models.py (float64 golden
logits checked in the C++ tests) with a character-level tokenizer.json, run
through info, generate, ppl (sliding layers in their own cache), inspect (the
sink-logit report) and convert."""
import json
import shutil
import subprocess
import sys

import pytest

from cli_util import SOURCE, run

CHARS = [chr(c) for c in range(32, 127)]
TEXT = "Once upon a time, there was a little fox who liked to run in the woods. " * 40


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    python = shutil.which("python3", path="/usr/bin") or sys.executable
    r = subprocess.run([python, SOURCE / "tests" / "reference" / "make_tiny_models.py", out],
                       capture_output=True, text=True, timeout=300)
    if r.returncode == 77:
        pytest.skip("the tiny reference models need python3-torch: " + r.stdout.strip())
    assert r.returncode == 0, r.stderr
    vocab = {"<unk>": 0, **{c: i + 1 for i, c in enumerate(CHARS)}}
    tok = {"version": "1.0", "normalizer": None, "pre_tokenizer": None, "post_processor": None, "decoder": None,
           "added_tokens": [{"id": 0, "content": "<unk>", "special": True, "single_word": False,
                             "lstrip": False, "rstrip": False, "normalized": False}],
           "model": {"type": "BPE", "vocab": vocab, "merges": [], "unk_token": "<unk>", "byte_fallback": False}}
    for name in ("gpt_oss", "gemma3"):
        (out / name / "tokenizer.json").write_text(json.dumps(tok))
    (out / "text.txt").write_text(TEXT)
    return out


@pytest.mark.parametrize("name", ["gpt_oss", "gemma3"])
def test_hf_and_gguf_forms_run_generate_ppl_and_inspect(models, tmp_path, name):
    folder = models / name
    gguf = tmp_path / f"{name}.gguf"
    r = run("convert", "-m", folder, "-o", gguf, "--type", "q8_0")
    assert r.returncode == 0, r.stderr
    info = run("info", "-m", gguf)
    assert info.returncode == 0, info.stderr
    assert "for the sliding layers at any context" in info.stdout, info.stdout
    if name == "gpt_oss":
        assert "MXFP4" in info.stdout and "sink logits:  learned" in info.stdout, info.stdout
    for model in (folder, gguf):
        tok = ("--tokenizer", folder / "tokenizer.json")
        g = run("generate", "-m", model, *tok, "-p", "Once upon", "-n", 12, "--temp", 0)
        assert g.returncode == 0, g.stderr
        assert "generated: 12 tokens" in g.stderr, g.stderr
        out = tmp_path / f"ppl_{model.name}.json"
        p = run("ppl", "-m", model, *tok, "-f", models / "text.txt", "--max-tokens", 400, "--cache", "sink",
                "--sink", 4, "--window", 60, "--json", out, "-t", 1)
        assert p.returncode == 0, p.stderr
        j = json.loads(out.read_text())
        assert j["predicted"] == 399 and j["ppl"] > 1
        # Sliding layers keep window + 255 tokens whatever the policy.
        assert 0 < j["kv_sliding_bytes"] < j["kv_bytes"], j
        assert "kv cache:" in p.stdout and "for the sliding layers" in p.stdout, p.stdout
    for model in (folder, gguf):
        rep = tmp_path / f"rep_{model.name}"
        i = run("inspect", "-m", model, "--tokenizer", folder / "tokenizer.json", "-f", models / "text.txt",
                "--tokens", 64, "--out", rep)
        assert i.returncode == 0, i.stderr
        report = json.loads((rep / "report.json").read_text())
        mass = report["sink_scores"]["sink_logit_mass"]
        if name == "gpt_oss":
            assert "sink logit: heads send" in i.stdout, i.stdout
            assert report["sink_logits"] and max(mass) > 0.01
            assert "Where the spare attention goes" in (rep / "report.html").read_text()
        else:
            assert report["sink_logits"] is None and max(mass) < 1e-5


def test_gemma3_refuses_a_dtype_it_does_not_know(models):
    r = run("info", "-m", models / "gemma3", "--dtype", "f8")
    assert r.returncode != 0 and "f8" in r.stderr
