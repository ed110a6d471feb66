"""`sinklab inspect` on the real stories260K checkpoint: report.json holds the
documented keys with sane values, report.html is written, and bad input is one
clear error line."""
import json
import math

import pytest

from cli_util import ASSETS, MODEL, assert_one_clear_error, run

TEXT = ASSETS / "text" / "tinystories_valid_excerpt.txt"

needs_assets = pytest.mark.skipif(not (MODEL.exists() and TEXT.exists()),
                                  reason=f"assets missing: {MODEL} or {TEXT} (set SINKLAB_ASSETS)")

KEYS = {"format", "version", "verdict", "model", "text", "options", "sink_scores", "sink_logits", "attention_maps",
        "massive_activations", "value_norms", "propagation", "super_experts"}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    if not (MODEL.exists() and TEXT.exists()):
        pytest.skip(f"assets missing: {MODEL} or {TEXT} (set SINKLAB_ASSETS)")
    out = tmp_path_factory.mktemp("inspect")
    r = run("inspect", "-m", MODEL, "-f", TEXT, "--tokens", 96, "--first-k", 3, "--out", out)
    assert r.returncode == 0, r.stderr
    return out, r.stdout, json.loads((out / "report.json").read_text())


def test_writes_both_files_and_a_summary(report):
    out, stdout, _ = report
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "</html>" in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html
    for word in ("model:", "tokens:     96", "Sink_0^0.3", "massive:", "rollout:", "report.html"):
        assert word in stdout, stdout
    assert stdout.splitlines()[0] == "verdict:    " + json.loads((out / "report.json").read_text())["verdict"]["text"]


def test_verdict_agrees_with_the_sink_scores(report):
    _, _, j = report
    v, s = j["verdict"], j["sink_scores"]
    alpha0 = [s["alpha"][i * s["n_keys"]] for i in range(len(s["layers"]) * s["n_heads"])]
    assert v["heads_total"] == 40 and v["eps"] == 0.3
    assert v["heads_above"] == sum(1 for a in alpha0 if a > 0.3)
    assert v["max_alpha0"] == pytest.approx(max(alpha0))
    assert v["sink"] == (v["heads_above"] >= 1)
    want = (f"sink on token 0: {v['heads_above']} of 40 heads with α0 > 0.3; " if v["sink"]
            else f"no sink: max α0 = {max(alpha0):.3g} ≤ ε = 0.3")
    assert v["text"].startswith(want), v["text"]
    token0 = j["massive_activations"]["token0"]
    assert [t["layer"] for t in token0] == [0, 1, 2, 3, 4]
    for t, layer in zip(token0, j["massive_activations"]["layers"]):
        assert t["ratio"] == pytest.approx(t["max_abs"] / layer["median_abs"])
        assert t["max_abs"] <= layer["max_abs"] * (1 + 1e-6)
    assert v["massive_ratio"] == pytest.approx(max(t["ratio"] for t in token0))
    assert 0 < v["value_drain"] < 10
    assert "soaks up" in v["explanation"] and "median" in v["definitions"]
    assert j["sink_logits"] is None and j["model"]["variant"] is None


def test_report_keys_and_model(report):
    _, _, j = report
    assert KEYS <= set(j)
    assert j["format"] == "sinklab-inspect-report" and j["version"] == 1
    m = j["model"]
    assert (m["arch"], m["n_layers"], m["n_heads"], m["n_kv_heads"], m["moe"]) == ("llama", 5, 8, 4, False)
    t = j["text"]
    assert t["n_tokens"] == 96 == len(t["ids"]) == len(t["tokens"])
    assert t["ids"][0] == 1  # BOS
    assert t["source"] == str(TEXT) and t["preview"].lower().startswith("once upon")
    assert j["options"] == {**j["options"], "eps": 0.3, "first_k": 3}


def test_sink_scores_are_probabilities(report):
    _, _, j = report
    s = j["sink_scores"]
    assert (s["n_heads"], s["n_tokens"], s["n_keys"], s["layers"]) == (8, 96, 3, [0, 1, 2, 3, 4])
    assert len(s["alpha"]) == 5 * 8 * 3 and all(0 <= a <= 1 + 1e-6 for a in s["alpha"])
    assert len(s["sink_percent"]) == 3 and all(0 <= p <= 100 for p in s["sink_percent"])
    for k, p in enumerate(s["sink_percent"]):
        above = sum(1 for i in range(40) if s["alpha"][i * 3 + k] > 0.3)
        assert p == pytest.approx(100 * above / 40)
    heads = s["top_heads"]
    assert len(heads) == 40
    assert [h["alpha0"] for h in heads] == sorted((h["alpha0"] for h in heads), reverse=True)
    assert heads[0]["alpha0"] == pytest.approx(max(s["alpha"][i * 3] for i in range(40)))
    assert all(0 <= h["mass_first_k"] <= 1 + 1e-6 for h in heads)


def test_attention_maps_are_causal_rows(report):
    _, _, j = report
    maps = j["attention_maps"]
    assert len(maps) == 4
    top = j["sink_scores"]["top_heads"]
    for m, h in zip(maps, top):
        assert (m["layer"], m["head"]) == (h["layer"], h["head"])
        n = m["size"]
        assert n == 64 and len(m["probs"]) == n * n
        for i in range(n):
            row = m["probs"][i * n:(i + 1) * n]
            assert all(v == 0 for v in row[i + 1:])
            assert all(v >= 0 for v in row)
            assert sum(row) <= 1 + 1e-4
        assert m["probs"][0] == pytest.approx(1.0, abs=1e-5)


def test_massive_value_norms_propagation(report):
    _, _, j = report
    ma = j["massive_activations"]
    assert ma["abs_threshold"] == 100 and ma["ratio_threshold"] == 1000
    assert [l["layer"] for l in ma["layers"]] == [0, 1, 2, 3, 4]
    for l in ma["layers"]:
        assert 0 < l["median_abs"] <= l["max_abs"] < 1e4
        assert l["n_flagged"] == len(l["flagged"])
        assert l["top"] and abs(l["top"][0]["value"]) == pytest.approx(l["max_abs"], rel=1e-5)
    v = j["value_norms"]
    assert (v["n_kv_heads"], v["n_tokens"]) == (4, 16) and len(v["norms"]) == 5 * 4 * 16
    assert all(0 < x < 1e3 for x in v["norms"])
    p = j["propagation"]
    assert p["n_tokens"] == 96 and len(p["influence_on_last"]) == 96 and "attention" not in p
    assert sum(p["influence_on_last"]) == pytest.approx(1.0, abs=1e-4)
    assert all(x >= 0 for x in p["influence_on_last"])
    assert len(p["layers"]) == 5
    for l in p["layers"]:
        assert 0 < l["centered_ratio"] <= 1 + 1e-9
        assert 1 <= l["effective_rank"] <= 64
        assert l["dirichlet_energy"] >= 0 and math.isfinite(l["dirichlet_energy_normalized"])
    assert j["super_experts"]["moe"] is False and "dense" in j["super_experts"]["reason"]


@needs_assets
def test_json_flag_prints_the_report(tmp_path):
    r = run("inspect", "-m", MODEL, "-f", TEXT, "--tokens", 8, "--out", tmp_path / "o", "--json", "-")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert KEYS <= set(j) and j["text"]["n_tokens"] == 8
    assert json.loads((tmp_path / "o" / "report.json").read_text()) == j


@needs_assets
def test_short_text_clamps_first_k(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("Hi")
    r = run("inspect", "-m", MODEL, "-f", short, "--first-k", 8, "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    j = json.loads((tmp_path / "o" / "report.json").read_text())
    n = j["text"]["n_tokens"]
    assert 1 <= n <= 3 and j["sink_scores"]["n_keys"] == n
    assert len(j["attention_maps"]) == 4 and j["attention_maps"][0]["size"] == n


def test_unknown_model(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("Once upon a time")
    r = run("inspect", "-m", tmp_path / "nope.bin", "-f", text, "--out", tmp_path / "o")
    assert_one_clear_error(r, "nope.bin", "does not exist")
    assert not (tmp_path / "o").exists()


@needs_assets
@pytest.mark.parametrize("content", ["", "  \n\n "])
def test_empty_text(tmp_path, content):
    text = tmp_path / "t.txt"
    text.write_text(content)
    r = run("inspect", "-m", MODEL, "-f", text, "--out", tmp_path / "o")
    assert_one_clear_error(r, "empty", "t.txt")


@needs_assets
def test_missing_text_file(tmp_path):
    r = run("inspect", "-m", MODEL, "-f", tmp_path / "absent.txt", "--out", tmp_path / "o")
    assert_one_clear_error(r, "absent.txt", "does not exist")


@needs_assets
@pytest.mark.parametrize("flags, words", [
    (["--tokens", "0"], ["--tokens"]),
    (["--tokens", "-3"], ["--tokens"]),
    (["--eps", "1.5"], ["--eps"]),
    (["--first-k", "0"], ["--first-k"]),
])
def test_bad_flags(tmp_path, flags, words):
    r = run("inspect", "-m", MODEL, "-f", TEXT, "--out", tmp_path / "o", *flags)
    assert_one_clear_error(r, *words)


@needs_assets
def test_long_input_states_its_cost_and_progress(tmp_path):
    book = ASSETS / "text" / "frankenstein.txt"
    r = run("inspect", "-m", MODEL, "-f", book, "--tokens", 1100, "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    assert "1100 tokens; the attention probes materialise" in r.stderr
    for i, probe in enumerate(["sink scores", "attention maps", "massive activations", "value norms",
                               "propagation"]):
        assert f"probe {i + 1}/5 {probe}" in r.stderr, r.stderr
    # Short inputs stay quiet.
    r = run("inspect", "-m", MODEL, "-f", book, "--tokens", 64, "--out", tmp_path / "p")
    assert r.returncode == 0 and "probe 1/5" not in r.stderr, r.stderr


@needs_assets
def test_tokens_past_the_context_warn_and_tokens_read_as_text(tmp_path):
    book = ASSETS / "text" / "frankenstein.txt"
    r = run("inspect", "-m", MODEL, "-f", book, "--tokens", 600, "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    assert "past the model's training context of 512" in r.stderr
    j = json.loads((tmp_path / "o" / "report.json").read_text())
    assert not any("\u2581" in t for t in j["text"]["tokens"])  # "▁" is shown as a space
    r = run("inspect", "-m", MODEL, "-f", book, "--tokens", 64, "--out", tmp_path / "p")
    assert "training context" not in r.stderr
