"""The Python surface of sinklab.attention: layouts, dtypes, return forms."""
import numpy as np
import pytest

import sinklab

IMPLS = ("reference", "flash")


def run(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except sinklab.Error as e:
        if kwargs.get("impl") == "flash" and "not available" in str(e):
            pytest.skip(f"flash not available in this build: {e}")
        raise


def inputs(seed=0, b=2, h=4, g=2, n_q=5, n_k=7, d=16):
    r = np.random.default_rng(seed)
    return (r.standard_normal((b, h, n_q, d)).astype(np.float32),
            r.standard_normal((b, g, n_k, d)).astype(np.float32),
            r.standard_normal((b, g, n_k, d)).astype(np.float32))


def test_version():
    assert isinstance(sinklab.__version__, str) and sinklab.__version__.count(".") == 2


@pytest.mark.parametrize("impl", IMPLS)
def test_return_forms(impl):
    q, k, v = inputs()
    o = run(sinklab.attention, q, k, v, impl=impl)
    assert isinstance(o, np.ndarray) and o.shape == (2, 4, 5, 16) and o.dtype == np.float32
    o2, lse = run(sinklab.attention, q, k, v, impl=impl, return_lse=True)
    assert lse.shape == (2, 4, 5) and lse.dtype == np.float32
    np.testing.assert_array_equal(o, o2)
    o3, lse3, stats = run(sinklab.attention, q, k, v, impl=impl, return_stats=True, stats_first_k=2)
    np.testing.assert_array_equal(lse, lse3)
    assert stats["mass_first_k"].shape == (2, 4, 5)
    assert stats["entropy"].shape == (2, 4, 5)
    assert stats["column_sums"].shape == (2, 4, 7)
    # Without a sink logit every row's probabilities sum to 1.
    np.testing.assert_allclose(stats["column_sums"].sum(-1), 5.0, rtol=1e-5)
    assert np.isfinite(o3).all()


@pytest.mark.parametrize("impl", IMPLS)
def test_non_contiguous_and_float64_inputs_match(impl):
    q, k, v = inputs(1)
    expected = run(sinklab.attention, q, k, v, impl=impl)
    # [b, n, h, d] storage transposed to [b, h, n, d]: strided, unit last dim (viewed in place).
    q_bnhd = np.ascontiguousarray(q.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
    k_bnhd = np.ascontiguousarray(k.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
    assert not q_bnhd.flags.c_contiguous
    got = run(sinklab.attention, q_bnhd, k_bnhd, v, impl=impl)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    # Last dimension with stride 2 (copied first).
    wide = np.repeat(v, 2, axis=-1)
    got = run(sinklab.attention, q, k, wide[..., ::2], impl=impl)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    # Negative strides (copied first).
    got = run(sinklab.attention, q, k[:, :, ::-1][:, :, ::-1], v, impl=impl)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    # float64 is converted to float32.
    got = run(sinklab.attention, q.astype(np.float64), k.astype(np.float64), v.astype(np.float64), impl=impl)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    # Broadcast (stride 0) batch dimension.
    got = run(sinklab.attention, np.broadcast_to(q[:1], q.shape), k[:1].repeat(2, 0), v[:1].repeat(2, 0),
              impl=impl)
    np.testing.assert_allclose(got[1], got[0], rtol=1e-6, atol=1e-6)


def test_inputs_are_not_modified():
    q, k, v = inputs(2)
    copies = [x.copy() for x in (q, k, v)]
    sinklab.attention(q, k, v, impl="reference", sink_logits=np.zeros(4, np.float32))
    for a, b in zip((q, k, v), copies):
        np.testing.assert_array_equal(a, b)


def test_lists_for_small_parameters():
    q, k, v = inputs(3)
    a = sinklab.attention(q, k, v, impl="reference", sink_logits=[0.0, 1.0, 2.0, 3.0],
                          prior={"alibi_slopes": [0.5, 0.25, 0.1, 0.0]}, positions=([3, 4, 5, 6, 7], None))
    b = sinklab.attention(q, k, v, impl="reference", sink_logits=np.arange(4, dtype=np.float32),
                          prior={"alibi_slopes": np.array([0.5, 0.25, 0.1, 0.0], np.float32)},
                          positions=(np.arange(3, 8), None))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("impl", IMPLS)
def test_backward_returns_what_the_spec_has(impl):
    q, k, v = inputs(4)
    kw = dict(sink_logits=np.zeros(4, np.float32),
              prior=dict(goat_lambda_sym=np.ones((2, 3), np.float32), key_bias=np.zeros((1, 2, 7), np.float32)))
    o, lse = run(sinklab.attention, q, k, v, impl=impl, return_lse=True, **kw)
    g = run(sinklab.attention_backward, q, k, v, o, lse, np.ones_like(o), impl=impl, **kw)
    assert set(g) == {"dq", "dk", "dv", "d_sink_logits", "d_goat_lambda_sym", "d_goat_lambda_asym", "d_key_bias"}
    assert g["d_key_bias"].shape == (1, 2, 7)
    assert g["d_goat_lambda_asym"].shape == (2, 3)
    for x in g.values():
        assert np.isfinite(x).all()
    plain = run(sinklab.attention_backward, q, k, v, o, lse, np.ones_like(o), impl=impl)
    assert set(plain) == {"dq", "dk", "dv"}


def _recycle_small_buffers(value):
    # numpy hands out small data buffers from a cache of freed ones; fill it
    # with `value` so that a read of memory the caller never gave shows up.
    for _ in range(16):
        np.full(1, value, np.float32)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("given", ["goat_lambda_sym", "goat_lambda_asym"])
def test_goat_missing_half_is_zero(impl, given):
    q, k, v = inputs(5)
    lam = np.linspace(-1.0, 1.0, 6, dtype=np.float32).reshape(2, 3)
    other = "goat_lambda_asym" if given == "goat_lambda_sym" else "goat_lambda_sym"
    half = {given: lam}
    full = {given: lam, other: np.zeros((2, 3), np.float32)}
    o_full, lse_full = run(sinklab.attention, q, k, v, impl=impl, return_lse=True, prior=full)
    d_o = np.ones_like(o_full)
    g_full = run(sinklab.attention_backward, q, k, v, o_full, lse_full, d_o, impl=impl, prior=full)
    for poison in (np.nan, 1e30, -1e30):
        _recycle_small_buffers(poison)
        o, lse = run(sinklab.attention, q, k, v, impl=impl, return_lse=True, prior=half)
        np.testing.assert_array_equal(o, o_full)
        np.testing.assert_array_equal(lse, lse_full)
        _recycle_small_buffers(poison)
        g = run(sinklab.attention_backward, q, k, v, o, lse, d_o, impl=impl, prior=half)
        assert set(g) == set(g_full)
        for name in g_full:
            np.testing.assert_array_equal(g[name], g_full[name], err_msg=name)
