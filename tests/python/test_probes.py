"""Probe functions of the Python module on the real stories260K model."""
import os
from pathlib import Path

import numpy as np
import pytest

import sinklab

ASSETS = Path(os.environ.get("SINKLAB_ASSETS", Path(__file__).resolve().parents[2].parent / "shared" / "assets"))
MODEL = ASSETS / "models" / "stories260K" / "stories260K.bin"
needs_model = pytest.mark.skipif(not MODEL.exists(), reason=f"assets missing: {MODEL}")


@needs_model
def test_sink_scores_shape_range_and_definition():
    m = sinklab.Model(str(MODEL))
    ids = m.tokenize("Once upon a time, there was a little girl named Lily.")
    r = sinklab.sink_scores(m, ids)
    cfg = m.config
    assert r["alpha"].shape == (cfg["n_layers"], cfg["n_heads"], len(ids))
    assert np.all(r["alpha"] >= 0) and np.all(r["alpha"] <= 1)
    # Sink_k^eps is the share of (layer, head) with alpha_k > eps, in percent.
    want = 100.0 * (r["alpha"] > r["eps"]).mean(axis=(0, 1))
    np.testing.assert_allclose(r["sink_percent"], want)
    # alpha_0 is the mean over every query of the attention on key 0.
    assert r["alpha"][:, :, 0].max() > 0


@needs_model
def test_massive_activations_and_propagation():
    m = sinklab.Model(str(MODEL))
    ids = m.tokenize("One day, she saw a big red ball in the park.")
    ma = sinklab.massive_activations(m, ids, top_n=3)
    assert len(ma["layers"]) == m.config["n_layers"]
    assert all(len(layer["top"]) == 3 for layer in ma["layers"])
    pr = sinklab.propagation(m, ids)
    infl = np.array(pr["influence_on_last"])
    assert infl.shape == (len(ids),) and abs(infl.sum() - 1) < 1e-4


@needs_model
def test_probe_bad_input():
    m = sinklab.Model(str(MODEL))
    with pytest.raises(ValueError):
        sinklab.sink_scores(m, [])
    with pytest.raises(sinklab.Error):
        sinklab.sink_scores(m, [1, 99999])
