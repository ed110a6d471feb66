"""gpt-oss and Gemma 3 from Python: the tiny checkpoints of
tests/reference/make_tiny_models.py, natively (gpt-oss's mxfp4 experts stay
mxfp4) and dequantised, with the sink-logit mass and a streaming perplexity."""
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

import sinklab

SOURCE = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    python = shutil.which("python3", path="/usr/bin") or sys.executable
    r = subprocess.run([python, SOURCE / "tests" / "reference" / "make_tiny_models.py", out],
                       capture_output=True, text=True, timeout=300)
    if r.returncode == 77:
        pytest.skip("the tiny reference models need python3-torch")
    assert r.returncode == 0, r.stderr
    return out


def test_gpt_oss_native_equals_dequantised_and_has_sink_mass(tiny):
    native = sinklab.Model(str(tiny / "gpt_oss"))
    f32 = sinklab.Model(str(tiny / "gpt_oss"), dtype="f32")
    ids = [int(x) for x in (tiny / "gpt_oss" / "ids.txt").read_text().split()]
    golden = np.fromfile(tiny / "gpt_oss" / "logits.f32", dtype="<f4").reshape(len(ids), -1)
    for m in (native, f32):
        got = m.logits(ids)
        assert got.shape == golden.shape
        err = np.abs(got - golden).max(axis=1) / np.abs(golden).max(axis=1)
        assert err.max() < 1e-4, err.max()
    r = sinklab.sink_scores(native, ids)
    assert r["sink_logit_mass"].shape == (4, 4) and r["sink_logit_mass"].max() > 0.01
    p = native.perplexity(ids * 20, cache="sink:sink=4,window=40")
    assert p["predicted"] == len(ids) * 20 - 1 and np.isfinite(p["ppl"])
    assert 0 < p["kv_sliding_bytes"] < p["kv_bytes"]


def test_gguf_forms_load_natively_and_match(tiny, tmp_path):
    for name in ("gpt_oss", "gemma3"):
        gguf = tmp_path / f"{name}.gguf"
        binary = os.environ.get("SINKLAB_BIN") or next(iter(sorted(SOURCE.glob("build*/bin/sinklab"))), None)
        if not binary:
            pytest.skip("the sinklab binary was not found (set SINKLAB_BIN)")
        r = subprocess.run([binary, "convert", "-m", tiny / name, "-o", gguf, "--type", "f32"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        ids = [int(x) for x in (tiny / name / "ids.txt").read_text().split()]
        a = sinklab.Model(str(tiny / name), dtype="f32").logits(ids)
        b = sinklab.Model(str(gguf)).logits(ids)
        np.testing.assert_array_equal(a, b)
        assert sinklab.sink_scores(sinklab.Model(str(gguf)), ids)["sink_logit_mass"].shape[0] == 4


def test_gemma3_session_streams_past_its_window(tiny):
    m = sinklab.Model(str(tiny / "gemma3"))
    s = sinklab.Session(m, cache="window", window=32)
    s.feed(list(range(1, 97)) * 3)
    assert s.evict_stats()["cached"] == 32
    assert np.isfinite(s.next_logits()).all()
    assert sinklab.sink_scores(m, list(range(1, 40)))["sink_logit_mass"].max() < 1e-5
