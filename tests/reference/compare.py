"""Comparison and skip helpers shared by the reference tests."""
import numpy as np
import pytest

import sinklab

IMPLS = ("reference", "flash")


def call(fn, *args, **kwargs):
    """Runs fn(*args, **kwargs); skips only when impl='flash' and sinklab says
    the flash implementation is not available."""
    impl = kwargs.get("impl")
    try:
        return fn(*args, **kwargs)
    except sinklab.Error as e:
        if impl == "flash" and "not available" in str(e):
            pytest.skip(f"flash not available in this build: {e}")
        raise


def rel_l2(actual, expected):
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    diff = np.linalg.norm((actual - expected).ravel())
    scale = np.linalg.norm(expected.ravel())
    if scale == 0:
        return 0.0 if diff == 0 else np.inf
    return diff / scale


def assert_close(actual, expected, tol, what):
    """Relative L2 error <= tol. Infinite entries must match exactly (same
    sign, same place) and are left out of the norm; NaN never passes."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert not np.isnan(actual).any(), f"{what}: NaN in sinklab output"
    assert not np.isnan(expected).any(), f"{what}: NaN in torch output"
    inf = np.isinf(expected)
    assert np.array_equal(np.isinf(actual), inf), f"{what}: infinite entries differ"
    assert np.array_equal(actual[inf], expected[inf]), f"{what}: infinite entries differ in sign"
    err = rel_l2(actual[~inf], expected[~inf])
    assert err <= tol, f"{what}: relative L2 error {err:.3e} > {tol:.0e}"
    return err
