"""`sinklab litm` on stories260K with tiny sizes: the table, the JSON (every
cell, both conditions), the self-contained HTML, and one-line errors; and
`sinklab ppl --ablate` reports its interventions and rejects bad ones."""
import json

import pytest

from cli_util import ASSETS, MODEL, assert_one_clear_error, run

TEXT = ASSETS / "text" / "tinystories_valid_excerpt.txt"
needs_model = pytest.mark.skipif(not MODEL.exists(), reason=f"assets missing: {MODEL} (set SINKLAB_ASSETS)")


@needs_model
@pytest.mark.parametrize("task", ["synthetic", "uuid"])
def test_litm_writes_json_and_html(tmp_path, task):
    out_json, out_html = tmp_path / "litm.json", tmp_path / "litm.html"
    r = run("litm", "-m", MODEL, "--task", task, "--pairs", "2,3", "--query-positions", "3", "--trials", "2",
            "--ablate", "sink:keys=0", "--json", out_json, "--html", out_html, "-t", "2")
    assert r.returncode == 0, r.stderr
    assert "condition 1: sink:keys=0" in r.stdout
    assert "trials" in r.stderr  # progress bar
    j = json.loads(out_json.read_text())
    assert j["format"] == "sinklab-litm" and j["options"]["task"] == task
    assert [c["name"] for c in j["conditions"]] == ["baseline", "sink:keys=0"]
    cells = j["cells"]
    # n = 2 has positions 0, 1 (g = round(i * (n - 1) / 2) deduplicated); n = 3 has 0, 1, 2.
    assert len(cells) == 2 * (2 + 3)
    assert sorted((c["n_pairs"], c["position"]) for c in cells if c["condition"] == 0) == \
        [(2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]
    for c in cells:
        assert 0 <= c["accuracy"] <= 1 and c["trials"] == 2
        assert c["logprob"] < 0 and c["rank"] >= 1
    html = out_html.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert 'id="litm-data"' in html and "sec-accuracy" in html
    assert "<script src" not in html and "https://" not in html


@needs_model
def test_litm_bad_input_is_one_line():
    assert_one_clear_error(run("litm", "-m", MODEL, "--ablate", "sink:layers=9"), "ablate spec", "layer 9")
    assert_one_clear_error(run("litm", "-m", MODEL, "--ablate", "warp:x=1"), "unknown intervention")
    assert_one_clear_error(run("litm", "-m", MODEL, "--pairs", "100000", "--key-tokens", "1", "--trials", "1"),
                           "too few")


@needs_model
def test_ppl_ablate(tmp_path):
    out = tmp_path / "ppl.json"
    r = run("ppl", "-m", MODEL, "-f", TEXT, "--max-tokens", "64", "--ablate", "sink:keys=0;1",
            "--ablate", "prepend", "--json", out)
    assert r.returncode == 0, r.stderr
    assert "interventions: sink:keys=0;1 + prepend" in r.stdout
    j = json.loads(out.read_text())
    assert j["ablate"] == ["sink:keys=0;1", "prepend"] and j["predicted"] == 63
    base = run("ppl", "-m", MODEL, "-f", TEXT, "--max-tokens", "64")
    assert base.stdout.split()[1] != r.stdout.split()[1]  # the perplexity changed
    assert_one_clear_error(run("ppl", "-m", MODEL, "-f", TEXT, "--ablate", "prune:layer=0,expert=1"), "dense")
    assert_one_clear_error(run("ppl", "-m", MODEL, "-f", TEXT, "--ablate", "reset:tap=blk.0.nope,dims=1"),
                           "blk.0.nope")


@needs_model
def test_inspect_ablate_hides_key_zero(tmp_path):
    r = run("inspect", "-m", MODEL, "-f", TEXT, "--tokens", "24", "--ablate", "sink:keys=0", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    j = json.loads((tmp_path / "report.json").read_text())
    assert j["options"]["ablate"] == ["sink:keys=0"]
    alpha = j["sink_scores"]["alpha"]
    n_keys = j["sink_scores"]["n_keys"]
    assert all(abs(alpha[i]) < 1e-12 for i in range(0, len(alpha), n_keys))  # alpha_0 of every head
