"""Sinks that form here, from the command line: the shipped Bigram-Backcopy
models show their sink in `inspect` and the StreamingLLM collapse in
`ppl --task-stream`; `train --probe-every` records a run's emergence; the
default model reads typographic punctuation as well as ASCII; and the new
flags fail with one clear error line."""
import json

import pytest

from cli_util import ASSETS, SOURCE, assert_one_clear_error, run

BB = SOURCE / "models" / "bb-vanilla-3l"
BB_LOGIT = SOURCE / "models" / "bb-sink-logit-3l"
DEFAULT = SOURCE / "models" / "default"


def test_inspect_shows_the_sink_of_the_shipped_model(tmp_path):
    r = run("inspect", "-m", BB, "--out", tmp_path / "rep")
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert first.startswith("verdict:    sink on token 0:"), first
    assert "by query kind" in r.stdout and "layer 0 head 0: alpha0 free 1.000, rule 0.000" in r.stdout, r.stdout
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    e = rep["sink_emergence"]
    assert e["alpha_free"][0] > 0.9 and e["alpha_rule"][0] < 0.05
    assert rep["task"]["task"] == "bigram-backcopy"
    # The model folder holds the run's probes: the report links their curves.
    assert rep["emergence_page"] == "emergence.html"
    assert "Sink emergence" in (tmp_path / "rep" / "emergence.html").read_text()


def free_nll(model, tmp_path, *cache):
    out = tmp_path / "ppl.json"
    r = run("ppl", "-m", model, "--task-stream", 1024, "-t", 1, "--json", out, "--force", *cache)
    assert r.returncode == 0, r.stderr
    assert "task nll: free queries" in r.stdout
    j = json.loads(out.read_text())
    return j["nll_free"], j["nll_rule"]


def test_window_only_collapses_the_vanilla_model_and_not_the_sink_logit_model(tmp_path):
    window = ("--cache", "window", "--window", 64)
    sink = ("--cache", "sink", "--sink", 1, "--window", 63)
    vw, vw_rule = free_nll(BB, tmp_path, *window)
    vs, _ = free_nll(BB, tmp_path, *sink)
    assert vw > 2 * vs, (vw, vs)
    assert vw_rule < 0.05, vw_rule  # copies look one token back
    lw, _ = free_nll(BB_LOGIT, tmp_path, *window)
    ls, _ = free_nll(BB_LOGIT, tmp_path, *sink)
    assert abs(lw - ls) < 0.01 * ls, (lw, ls)


def test_train_with_probes_writes_the_emergence_record(tmp_path):
    cfg = {"model": {"dim": 16, "n_layers": 1, "n_heads": 1, "seq_len": 16},
           "data": {"task": "bigram-backcopy", "vocab": 16, "triggers": 2},
           "train": {"batch_size": 2, "steps": 4, "warmup_steps": 0, "eval_batches": 1, "log_every": 1,
                     "out_dir": str(tmp_path / "run")}}
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    r = run("train", "--config", tmp_path / "c.json", "--probe-every", 2, "-q", "-t", 1)
    assert r.returncode == 0, r.stderr
    probes = json.loads((tmp_path / "run" / "probes.json").read_text())
    assert [x["step"] for x in probes["records"]] == [0, 2, 4]
    assert (tmp_path / "run" / "probes.html").exists() and (tmp_path / "run" / "task.json").exists()
    r = run("inspect", "-m", tmp_path / "run", "--out", tmp_path / "rep")
    assert r.returncode == 0, r.stderr


def test_new_flags_fail_with_one_clear_error(tmp_path):
    assert_one_clear_error(run("ppl", "-m", DEFAULT, "--task-stream", 100), "has no task.json")
    assert_one_clear_error(run("ppl", "-m", BB, "--task-stream", 100, "-f", SOURCE / "README.md"),
                           "exactly one of -f/--file and --task-stream")
    assert_one_clear_error(run("ppl", "-m", BB), "exactly one of -f/--file and --task-stream")
    assert_one_clear_error(run("inspect", "-m", DEFAULT, "--out", tmp_path / "x"), "-f/--file is required")
    assert_one_clear_error(run("inspect", "-m", BB, "--run", tmp_path, "--out", tmp_path / "y"), "holds no probes.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": {}, "data": {"task": "bigram-backcopy", "vocab": 5.5},
                               "train": {"out_dir": str(tmp_path / "r")}}))
    assert_one_clear_error(run("train", "--config", bad), "'vocab' must be an integer")


TEXT = ASSETS / "text" / "pride_and_prejudice.txt"


@pytest.mark.skipif(not TEXT.exists(), reason=f"assets missing: {TEXT} (set SINKLAB_ASSETS)")
def test_default_model_reads_typographic_punctuation(tmp_path):
    body = TEXT.read_text(encoding="utf-8")
    body = body[body.index("It is a truth"):][:60000]
    ascii_text = (body.replace("\u201c", '"').replace("\u201d", '"').replace("\u2018", "'")
                  .replace("\u2019", "'").replace("\u2014", "--"))
    assert ascii_text != body
    ppl = {}
    for name, text in (("typographic", body), ("ascii", ascii_text)):
        f = tmp_path / f"{name}.txt"
        f.write_text(text, encoding="utf-8")
        out = tmp_path / f"{name}.json"
        r = run("ppl", "-m", DEFAULT, "-f", f, "--max-tokens", 3000, "--cache", "sink", "--sink", 4,
                "--window", 124, "-t", 1, "--json", out, timeout=300)
        assert r.returncode == 0, r.stderr
        ppl[name] = json.loads(out.read_text())["ppl"]
    ratio = max(ppl.values()) / min(ppl.values())
    assert ratio < 1.3, ppl
