"""Caches that evict by attention (heavy, adaptive, snapkv) from the command
line: one that never evicts equals dense, they run beside the fixed caches in
one comparison, and --recompute (which runs a policy without a model) refuses
them with one clear error."""
import json
import math

import pytest

from cli_util import ASSETS, MODEL, assert_one_clear_error, run

TEXT = ASSETS / "text" / "tinystories_sample.txt"
needs_model = pytest.mark.skipif(not MODEL.exists() or not TEXT.exists(), reason="stories260K assets missing")


def perplexity(result):
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("perplexity: "), result.stdout
    return float(result.stdout.split()[1])


@needs_model
def test_attention_caches_that_never_evict_equal_dense():
    base = ("ppl", "-m", MODEL, "-f", TEXT, "--max-tokens", "200", "-t", "1")
    dense = perplexity(run(*base, "--cache", "dense"))
    for spec in ("heavy:budget=256", "adaptive:sink=4,budget=256", "snapkv:prompt=250,budget=64,window=16"):
        assert abs(perplexity(run(*base, "--cache", spec)) - dense) < 1e-4 * dense, spec


@needs_model
def test_attention_caches_compare_in_one_run(tmp_path):
    out = tmp_path / "cmp.json"
    caches = "dense,sink:sink=4,window=28,adaptive:sink=4,budget=32,heavy:budget=32,snapkv:prompt=128,budget=32,window=8"
    r = run("ppl", "-m", MODEL, "-f", TEXT, "--max-tokens", "300", "-t", "1", "--cache", caches, "--json", out)
    assert r.returncode == 0, r.stderr
    runs = json.loads(out.read_text())["runs"]
    assert [x["cache"] for x in runs] == ["dense:limit=512", "sink:sink=4,window=28", "adaptive:sink=4,budget=32",
                                          "heavy:budget=32", "snapkv:window=8,budget=32,prompt=128,pool=7"]
    assert [x["capacity"] for x in runs] == [512, 32, 32, 32, 128]
    for x in runs[1:]:
        assert math.isfinite(x["ppl"]) and x["kl"] > 0, x


@needs_model
def test_recompute_refuses_attention_caches():
    for spec in ("heavy:budget=32", "adaptive:budget=32", "snapkv:prompt=64,budget=32"):
        policy = spec.split(":")[0]
        assert_one_clear_error(run("ppl", "-m", MODEL, "-f", TEXT, "--max-tokens", "100", "--cache", spec,
                                   "--recompute"), f"'{policy}'", "attention")
