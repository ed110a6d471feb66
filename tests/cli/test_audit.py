"""`sinklab audit`: the sink mass and value norms equal inspect's on the same
tokens (the same probes), a reference model gives value-norm ratios, probes and
candidate prefixes give a recovery table, outputs need --force to be replaced,
and bad input is one clear error line."""
import json
import os
import re
import subprocess
import tempfile

import pytest

from cli_util import ASSETS, MODEL, SOURCE, assert_one_clear_error, run

TEXT = ASSETS / "text" / "tinystories_valid_excerpt.txt"
TOK = ASSETS / "models" / "stories260K" / "tok512.bin"
BB = SOURCE / "models" / "bb-vanilla-3l"

needs_assets = pytest.mark.skipif(not (MODEL.exists() and TEXT.exists()),
                                  reason=f"assets missing: {MODEL} or {TEXT} (set SINKLAB_ASSETS)")


def inspect_and_audit(tmp_path, model_args, tokens):
    ins = run("inspect", *model_args, "--tokens", tokens, "--first-k", 8, "--out", tmp_path / "ins")
    assert ins.returncode == 0, ins.stderr
    aud = run("audit", *model_args, "--tokens", tokens, "--first-k", 8, "--out", tmp_path / "aud")
    assert aud.returncode == 0, aud.stderr
    return (json.loads((tmp_path / "ins" / "report.json").read_text()),
            json.loads((tmp_path / "aud" / "audit.json").read_text()), aud.stdout)


def assert_same_probes(i, a):
    assert a["text"]["ids"] == i["text"]["ids"]
    si, sa = i["sink_scores"], a["sink_scores"]
    assert len(sa["mass_first_k"]) == len(si["mass_first_k"]) > 0
    for x, y in zip(sa["mass_first_k"], si["mass_first_k"]):
        assert abs(x - y) <= 1e-6
    for x, y in zip(sa["alpha"], si["alpha"]):
        assert abs(x - y) <= 1e-6
    vi, va = i["value_norms"], a["value_norms"]
    k, n_i, n_a = va["n_kv_heads"], vi["n_tokens"], va["n_tokens"]
    assert n_a == 8 and n_i >= n_a
    for li in range(len(va["layers"])):
        for g in range(k):
            for t in range(n_a):
                assert abs(va["norms"][(li * k + g) * n_a + t] - vi["norms"][(li * k + g) * n_i + t]) <= 1e-6
    mass = [m for row in a["sink_mass"]["mass"] for m in row]
    assert a["sink_mass"]["max"] == pytest.approx(max(mass))


@needs_assets
def test_text_model_numbers_equal_inspects(tmp_path):
    i, a, stdout = inspect_and_audit(tmp_path, ["-m", MODEL, "-f", TEXT], 48)
    assert_same_probes(i, a)
    assert a["format"] == "sinklab-audit" and a["reference"] is None and a["recovery"] is None
    assert "sink mass:" in stdout
    html = (tmp_path / "aud" / "audit.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "https://" not in html


@pytest.mark.skipif(not BB.exists(), reason=f"{BB} is missing")
def test_task_model_numbers_equal_inspects(tmp_path):
    i, a, _ = inspect_and_audit(tmp_path, ["-m", BB], 64)
    assert_same_probes(i, a)
    r = run("audit", "-m", BB, "--probe-keys", "1-4", "--out", tmp_path / "k")
    assert_one_clear_error(r, "--probe-keys", "bigram-backcopy")


@needs_assets
def test_reference_probes_and_candidates(tmp_path):
    probes = tmp_path / "probes.tsv"
    probes.write_text("Once upon a time, there was a little\tgirl\nOne day, a little boy went to the\tpark\n")
    cands = tmp_path / "cands.txt"
    cands.write_text("cf\nThe end.\n")
    out = tmp_path / "a"
    r = run("audit", "-m", MODEL, "-f", TEXT, "--tokens", 32, "--reference", MODEL, "--probes", probes,
            "--candidates", cands, "--out", out)
    assert r.returncode == 0, r.stderr
    j = json.loads((out / "audit.json").read_text())
    assert j["reference"] is not None
    for layer in j["value_norm_ratio"]:
        for head in layer:
            assert all(v == pytest.approx(1.0) for v in head)
    rec = j["recovery"]
    assert rec["probes"] == 2 and [c["name"] for c in rec["candidates"]] == ["cf", "The end."]
    for c in rec["candidates"]:
        for k in ("acc_none", "acc_sink", "acc_elsewhere"):
            assert 0 <= c[k] <= 1
        assert c["recovery_sink"] == pytest.approx(c["acc_sink"] - c["acc_none"])
        assert c["logp_sink"] <= 0 and c["logp_none"] <= 0
    assert rec["candidates"][0]["acc_none"] == rec["candidates"][1]["acc_none"]
    again = run("audit", "-m", MODEL, "-f", TEXT, "--tokens", 32, "--out", out)
    assert_one_clear_error(again, "--force")
    assert run("audit", "-m", MODEL, "-f", TEXT, "--tokens", 32, "--out", out, "--force").returncode == 0


@needs_assets
def test_bad_input_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("no tab on this line\n")
    r = run("audit", "-m", MODEL, "-f", TEXT, "--probes", bad, "--out", tmp_path / "x")
    assert_one_clear_error(r, "--probes", "CONTEXT<TAB>ANSWER")
    r = run("audit", "-m", MODEL, "--out", tmp_path / "y")
    assert_one_clear_error(r, "-f/--file")
    cfg = tmp_path / "exp.json"
    cfg.write_text('{"base": {"model": {}, "train": {}, "data": {"task": "assoc-recall"}}}')
    r = run("audit", "--experiment", cfg, "--out", tmp_path / "z")
    assert_one_clear_error(r, "kv-facts")


CHROMIUM = os.environ.get("SINKLAB_CHROMIUM", "/usr/bin/chromium")


@needs_assets
@pytest.mark.skipif(not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)),
                    reason=f"chromium is not installed at {CHROMIUM} (scripts/setup.sh installs it)")
def test_page_renders_every_section_in_a_browser(tmp_path):
    probes = tmp_path / "probes.tsv"
    probes.write_text("Once upon a time, there was a little\tgirl\n")
    cands = tmp_path / "cands.txt"
    cands.write_text("cf\n")
    out = tmp_path / "a"
    r = run("audit", "-m", MODEL, "-f", TEXT, "--tokens", 32, "--reference", MODEL, "--probes", probes,
            "--candidates", cands, "--out", out)
    assert r.returncode == 0, r.stderr
    with tempfile.TemporaryDirectory() as profile:
        b = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                            f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--dump-dom",
                            (out / "audit.html").resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert b.returncode == 0, b.stderr[-2000:]
    console = [line for line in b.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == [], "\n".join(console)
    m = re.search(r'data-sections-rendered="([^"]*)"', b.stdout)
    assert m and m.group(1).split() == ["mass", "values", "recovery"]
