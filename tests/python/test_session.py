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
    with pytest.raises(ValueError, match="window must be in 1"):
        sinklab.Session(model, cache="sink", sink=8, window=0)
    with pytest.raises(TypeError, match="window must be an int"):
        sinklab.Session(model, cache="sink", window="8")
    s = sinklab.Session(model, context=4)
    with pytest.raises(sinklab.Error, match="context"):
        s.feed([1, 2, 3, 4, 5])
    with pytest.raises(ValueError):
        s.feed([])


def test_chunked_session_evicts_whole_chunks(model):
    ids = stream_ids(100)
    chunk = [i // 8 for i in range(len(ids))]
    s = sinklab.Session(model, cache="chunked:sink_chunks=1,window_chunks=3,chunk_tokens=8")
    s.feed(ids[:50], chunk=chunk[:50])
    for i in range(50, 100):
        s.feed([ids[i]], chunk=chunk[i])
    # chunk 0 stays; chunks 10, 11 (full) and 12 (4 tokens so far) are the window.
    assert s.cached_indices() == list(range(8)) + list(range(80, 100))
    assert s.next_logits().shape == (model.config["vocab"],)
    # A whole batch with per-token chunk ids gives the same cache.
    b = sinklab.Session(model, cache="chunked:sink_chunks=1,window_chunks=3,chunk_tokens=8")
    b.feed(np.array(ids), chunk=np.array(chunk))
    assert b.cached_indices() == s.cached_indices()
    np.testing.assert_allclose(b.next_logits(), s.next_logits(), rtol=1e-5, atol=1e-5)


def test_modal_session_keeps_text_and_the_last_rounds(model):
    ids = stream_ids(60)
    modality = ["text"] * 10 + ["vision"] * 20 + ["text"] * 10 + ["vision"] * 20
    rounds = [0] * 10 + [1] * 10 + [2] * 10 + [2] * 10 + [3] * 10 + [4] * 10
    s = sinklab.Session(model, cache="modal:text_sink=2,text_window=6,vision_rounds=2,round_tokens=10")
    s.feed(ids, modality=modality, round=rounds)
    expected = [0, 1] + list(range(34, 40)) + list(range(40, 60))  # 2 + 6 text, rounds 3 and 4
    assert s.cached_indices() == expected
    t = sinklab.Session(model, cache="modal:text_sink=2,text_window=6,vision_rounds=2,round_tokens=10")
    t.feed(ids, modality=[0] * 10 + [1] * 20 + [0] * 10 + [1] * 20, round=rounds)
    assert t.cached_indices() == expected


def test_bad_metadata_raises(model):
    s = sinklab.Session(model, cache="chunked:window_chunks=2,chunk_tokens=4")
    with pytest.raises(ValueError, match="round or chunk"):
        s.feed([1, 2], round=0, chunk=0)
    with pytest.raises(ValueError, match="3 entries for 2 ids"):
        s.feed([1, 2], chunk=[0, 0, 1])
    with pytest.raises(ValueError, match="pixels"):
        s.feed([1, 2], modality=["text", "pixels"])
    with pytest.raises(ValueError, match="modality"):
        s.feed([1, 2], modality=5)
    with pytest.raises(sinklab.Error, match="must not decrease"):
        s.feed([1, 2], chunk=[1, 0])
    with pytest.raises(sinklab.Error, match="chunk_tokens"):
        s.feed([1, 2, 3, 4, 5], chunk=0)
    assert s.n_past == 4


DEFAULT = __import__("pathlib").Path(__file__).resolve().parents[2] / "models" / "default"


def test_feed_returns_the_tapped_tensors():
    m = sinklab.Model(str(DEFAULT))
    ids = m.tokenize("It is a truth universally acknowledged, that a single man in possession")
    s = sinklab.Session(m)
    assert s.feed(ids) is None
    s.reset()
    t = s.feed(ids, taps=["blk.*.attn_probs", "blk.3.resid_out"])
    n, heads = len(ids), m.config["n_heads"]
    assert sorted(t) == [f"blk.{l}.attn_probs" for l in range(4)] + ["blk.3.resid_out"]
    p = t["blk.2.attn_probs"]
    assert p.shape == (heads, n, n) and t["blk.3.resid_out"].shape == (n, m.config["dim"])
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5)
    assert np.abs(np.triu(p, 1)).max() == 0.0  # causal
    # The probe's alpha_0 is the mean attention to token 0 over the queries.
    alpha = sinklab.sink_scores(m, ids)["alpha"]
    np.testing.assert_allclose(alpha[2, :, 0], p[:, :, 0].mean(-1), atol=1e-5)
    with pytest.raises(ValueError, match="at least one"):
        s.feed(ids[:1], taps=[])


def test_add_tap_reads_and_replaces_tensors():
    m = sinklab.Model(str(DEFAULT))
    ids = m.tokenize("It is a truth universally acknowledged")
    base = sinklab.Session(m)
    base.feed(ids)
    want = base.next_logits()
    s = sinklab.Session(m)
    seen = []
    tid = s.add_tap("blk.1.v", lambda name, a, layer: seen.append((name, a.shape, layer)))
    s.feed(ids)
    np.testing.assert_array_equal(s.next_logits(), want)  # reading changes nothing
    assert seen == [("blk.1.v", (len(ids), m.config["n_kv_heads"] * m.config["head_dim"]), 1)]
    s.remove_tap(tid)
    s.reset()
    s.add_tap("blk.1.v", lambda name, a, layer: np.zeros_like(a))
    s.feed(ids)
    assert np.abs(s.next_logits() - want).max() > 1e-3  # the replacement took effect
    s2 = sinklab.Session(m)

    def in_place(name, a, layer):
        a[:] = 0.0

    s2.add_tap("blk.1.v", in_place)
    s2.feed(ids)
    np.testing.assert_allclose(s2.next_logits(), s.next_logits(), atol=1e-6)
    bad = sinklab.Session(m)
    bad.add_tap("blk.0.q", lambda name, a, layer: np.zeros((1, 1), np.float32))
    with pytest.raises(ValueError, match="shape"):
        bad.feed(ids)
    boom = sinklab.Session(m)

    def fail(name, a, layer):
        raise KeyError("from the tap")

    boom.add_tap("logits", fail)
    with pytest.raises(KeyError, match="from the tap"):
        boom.feed(ids)


@pytest.mark.parametrize("spec", ["adaptive:sink=4,budget=48", "heavy:budget=48", "snapkv:prompt=64,budget=48,window=8"])
def test_attention_driven_caches_from_python(model, spec):
    """The caches that evict by attention run from Python: bounded, and equal
    to dense while nothing has been evicted."""
    ids = stream_ids(200)
    s = sinklab.Session(model, cache=spec)
    dense = sinklab.Session(model)
    s.feed(ids[:40])
    dense.feed(ids[:40])
    np.testing.assert_allclose(s.next_logits(), dense.next_logits(), rtol=1e-5, atol=1e-5)
    for t in ids[40:]:
        s.feed([t])
    kept = s.cached_indices()
    assert len(kept) <= max(48, 64) and s.evict_stats()["evicted"] == 200 - len(kept)
    assert list(kept) == sorted(kept) and kept[-1] == 199
    assert np.isfinite(s.next_logits()).all()
