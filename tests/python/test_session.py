"""sinklab.Session: streaming KV cache policies from Python on stories260K."""
import os
import pathlib

import numpy as np
import pytest

import sinklab

SOURCE = pathlib.Path(__file__).resolve().parents[2]
ASSETS = pathlib.Path(os.environ.get("SINKLAB_ASSETS", SOURCE.parent / "shared" / "assets"))
MODEL = ASSETS / "models" / "stories260K" / "stories260K.bin"
TOKENIZER = ASSETS / "models" / "stories260K" / "tok512.bin"
GOLDEN_IDS = ASSETS / "golden" / "stories260K_greedy200_ids.txt"

pytestmark = pytest.mark.skipif(not MODEL.exists(), reason=f"assets missing: {MODEL} (set SINKLAB_ASSETS)")


@pytest.fixture(scope="module")
def model():
    return sinklab.Model(str(MODEL), tokenizer=str(TOKENIZER))


def stream_ids(n):
    ids = [1] + [int(x) for x in GOLDEN_IDS.read_text().split()]
    while len(ids) < n:
        ids.append(ids[len(ids) % 150 + 1])
    return ids[:n]


def test_dense_session_matches_model_logits(model):
    ids = stream_ids(40)
    s = sinklab.Session(model)
    s.feed(ids)
    ref = model.logits(ids)[-1]
    np.testing.assert_allclose(s.next_logits(), ref, rtol=1e-4, atol=1e-4)
    assert s.capacity == 512
    assert s.evict_stats()["evicted"] == 0


def test_sink_session_streams_past_the_training_length(model):
    ids = stream_ids(700)
    s = sinklab.Session(model, cache="sink", sink=4, window=252, positions="reindex")
    s.feed(ids[:300])
    for t in ids[300:]:
        s.feed([t])
    st = s.evict_stats()
    assert st["fed"] == 700 and st["cached"] == 256 and st["evicted"] == 444 and st["capacity"] == 256
    idx = s.cached_indices()
    assert idx[:4] == [0, 1, 2, 3] and idx[4] == 700 - 252 and idx[-1] == 699
    logits = s.next_logits()
    assert logits.shape == (model.config["vocab"],) and np.isfinite(logits).all()
    assert s.positions == "reindex"


def test_shift_equals_reindex(model):
    ids = stream_ids(120)
    a = sinklab.Session(model, cache="sink:sink=4,window=28", positions="reindex")
    b = sinklab.Session(model, cache="sink", sink=4, window=28, positions="shift")
    for t in ids:
        a.feed(t)
        b.feed(t)
    ra, rb = a.next_logits(), b.next_logits()
    assert np.max(np.abs(ra - rb)) <= 1e-4 * np.max(np.abs(ra))
    assert b.evict_stats()["rows_rotated"] > 0


def test_bad_options_raise(model):
    with pytest.raises(sinklab.Error, match="sink logits"):
        sinklab.Session(model, cache="sink-logit", window=8)
    with pytest.raises(sinklab.Error, match="sideways"):
        sinklab.Session(model, cache="window", window=8, positions="sideways")
    with pytest.raises(sinklab.Error):
        sinklab.Session(model, cache="sink", sink=8, window=0)
    s = sinklab.Session(model, context=4)
    with pytest.raises(sinklab.Error, match="context"):
        s.feed([1, 2, 3, 4, 5])
    with pytest.raises(ValueError):
        s.feed([])
