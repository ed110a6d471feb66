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
    L = m.config["n_layers"]
    ma = sinklab.massive_activations(m, ids, top_n=3, abs_threshold=1, ratio_threshold=3)
    np.testing.assert_array_equal(ma["layers"], np.arange(L))
    assert ma["top_value"].shape == (L, 3) and ma["top_token"].shape == (L, 3)
    # The top entries are the largest |h| of each layer, largest first.
    np.testing.assert_allclose(np.abs(ma["top_value"][:, 0]), ma["max_abs"], rtol=1e-6)
    assert (np.diff(np.abs(ma["top_value"]), axis=1) <= 0).all()
    # Flagged entries pass both thresholds, and each layer lists n_flagged of them.
    assert len(ma["flagged_value"]) == ma["n_flagged"].sum() > 0
    assert (np.abs(ma["flagged_value"]) > 1).all() and (ma["flagged_ratio"] > 3).all()
    np.testing.assert_array_equal(np.bincount(ma["flagged_layer"], minlength=L), ma["n_flagged"])
    np.testing.assert_array_equal(ma["flagged_token_id"], np.array(ids)[ma["flagged_token"]])
    pr = sinklab.propagation(m, ids)
    infl = pr["influence_on_last"]
    assert infl.shape == (len(ids),) and abs(infl.sum() - 1) < 1e-4
    assert pr["singular_values"].shape == (L, len(ids)) and pr["effective_rank"].shape == (L,)


@needs_model
def test_probe_results_are_dicts_of_arrays():
    m = sinklab.Model(str(MODEL))
    ids = m.tokenize("One day, she saw a big red ball in the park.")
    for probe in (sinklab.sink_scores, sinklab.massive_activations, sinklab.propagation):
        r = probe(m, ids)
        assert isinstance(r, dict)
        for key, value in r.items():
            assert isinstance(value, (np.ndarray, int, float)), (probe.__name__, key, type(value))
        assert r.get("layers", np.arange(1)).dtype == np.int64


@needs_model
def test_probe_bad_input():
    m = sinklab.Model(str(MODEL))
    with pytest.raises(ValueError):
        sinklab.sink_scores(m, [])
    with pytest.raises(sinklab.Error):
        sinklab.sink_scores(m, [1, 99999])
