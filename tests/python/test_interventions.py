"""ablate=[...] on sinklab.Session and the probe functions (stories260K)."""
import os
from pathlib import Path

import numpy as np
import pytest

import sinklab

ASSETS = Path(os.environ.get("SINKLAB_ASSETS", Path(__file__).resolve().parents[2].parent / "shared" / "assets"))
MODEL = ASSETS / "models" / "stories260K" / "stories260K.bin"
needs_model = pytest.mark.skipif(not MODEL.exists(), reason=f"assets missing: {MODEL}")
TEXT = "Once upon a time, there was a little girl named Lily."


@needs_model
def test_sink_mask_zeroes_alpha_of_the_masked_keys_only():
    m = sinklab.Model(str(MODEL))
    ids = m.tokenize(TEXT)
    base = sinklab.sink_scores(m, ids)
    cut = sinklab.sink_scores(m, ids, ablate=["sink:keys=0;2,layers=1..4"])
    assert base["alpha"].shape == cut["alpha"].shape
    assert np.all(cut["alpha"][1:, :, [0, 2]] == 0)
    assert np.all(base["alpha"][1:, :, 0] > 0)
    # Layer 0 is upstream of the mask and unchanged.
    np.testing.assert_array_equal(cut["alpha"][0], base["alpha"][0])
    # A single spec string works too; heads address query heads.
    one = sinklab.sink_scores(m, ids, ablate="sink:heads=3")
    assert np.all(one["alpha"][:, 3, 0] == 0) and np.all(one["alpha"][:, 2, 0] > 0)


@needs_model
def test_prepend_puts_the_token_first():
    m = sinklab.Model(str(MODEL))
    ids = m.tokenize(TEXT)
    r = sinklab.sink_scores(m, ids, ablate=["prepend:token=bos"])
    assert r["alpha"].shape[2] == len(ids) + 1
    s = sinklab.Session(m, ablate="prepend")
    assert s.n_past == 1
    s.feed(ids)
    plain = sinklab.Session(m)
    plain.feed([1])  # stories260K's BOS, fed in the same chunks
    plain.feed(ids)
    np.testing.assert_array_equal(s.next_logits(), plain.next_logits())
    s.reset()
    assert s.n_past == 1


@needs_model
def test_session_reset_mean_and_probes_agree_on_the_edit():
    m = sinklab.Model(str(MODEL))
    ids = m.tokenize(TEXT)
    spec = "reset:layer=2,dims=0..63,tokens=3,mode=zero"
    s = sinklab.Session(m, ablate=[spec])
    s.feed(ids)
    plain = sinklab.Session(m)
    plain.feed(ids)
    assert not np.array_equal(s.next_logits(), plain.next_logits())
    ma = sinklab.massive_activations(m, ids, ablate=[spec])
    base = sinklab.massive_activations(m, ids)
    def layer(r, l):  # every per-layer column of layer l
        return [r[k][l].tolist() for k in ("median_abs", "max_abs", "top_value", "top_token", "top_dim")]
    assert layer(ma, 1) == layer(base, 1)
    assert layer(ma, 2) != layer(base, 2)
    pr = sinklab.propagation(m, ids, ablate=[spec])
    assert len(pr["influence_on_last"]) == len(ids)


@needs_model
def test_bad_specs_raise_sinklab_error():
    m = sinklab.Model(str(MODEL))
    ids = m.tokenize(TEXT)
    with pytest.raises(sinklab.Error, match="layer 9"):
        sinklab.sink_scores(m, ids, ablate=["sink:layers=9"])
    with pytest.raises(sinklab.Error, match="dense"):
        sinklab.Session(m, ablate=["prune:layer=0,expert=0"])
    with pytest.raises(sinklab.Error, match="blk.0.nope"):
        sinklab.propagation(m, ids, ablate="reset:tap=blk.0.nope,dims=0")
    with pytest.raises(TypeError):
        sinklab.Session(m, ablate=[3])


def test_python_errors_do_not_name_command_line_flags():
    m = sinklab.Model(str(__import__("pathlib").Path(__file__).resolve().parents[2] / "models" / "default"))
    for bad in ("sink:kyes=0", "warp:x=1", "sink:layers=99"):
        with pytest.raises(sinklab.Error) as e:
            sinklab.Session(m, ablate=bad)
        assert "--" not in str(e.value), str(e.value)
