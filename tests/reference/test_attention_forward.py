"""sinklab.attention (every impl) against an independent float64 torch oracle."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch (python3-torch) is needed for the reference tests")

import sinklab  # noqa: E402
import torch_attention  # noqa: E402
from attention_cases import CASES, make_case, normal, rng_for, torch_arguments  # noqa: E402
from compare import IMPLS, assert_close, call  # noqa: E402

# Both sides start from the same float32 inputs; the oracle is float64, so
# the error is float32 arithmetic in the kernel (~1e-7 per operation, a few
# hundred terms per sum) far below this bound.
FORWARD_TOL = 1e-5


def oracle(q, k, v, kw, first_k=1):
    t = [torch.from_numpy(x.astype(np.float64)) for x in (q, k, v)]
    return torch_attention.attention(*t, first_k=first_k, **torch_arguments(kw))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", CASES)
def test_output_and_lse(case, impl):
    q, k, v, kw = make_case(case)
    o, lse = call(sinklab.attention, q, k, v, impl=impl, return_lse=True, **kw)
    ref = oracle(q, k, v, kw)
    assert o.dtype == np.float32 and lse.dtype == np.float32
    assert_close(o, ref["o"].numpy(), FORWARD_TOL, "o")
    assert_close(lse, ref["lse"].numpy(), FORWARD_TOL, "lse")
    # Without return_lse the same o comes back alone.
    o_only = call(sinklab.attention, q, k, v, impl=impl, **kw)
    assert isinstance(o_only, np.ndarray)
    assert_close(o_only, ref["o"].numpy(), FORWARD_TOL, "o (no lse)")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", ["plain_d64", "sink_logits", "fully_masked_rows_sink",
                                  "fully_masked_rows", "combined", "gqa_d80", "length1_query"])
@pytest.mark.parametrize("first_k", [1, 3])
def test_stats(case, impl, first_k):
    q, k, v, kw = make_case(case)
    o, lse, stats = call(sinklab.attention, q, k, v, impl=impl, return_stats=True,
                         stats_first_k=first_k, **kw)
    assert set(stats) == {"mass_first_k", "entropy", "column_sums"}
    ref = oracle(q, k, v, kw, first_k=first_k)
    assert_close(o, ref["o"].numpy(), FORWARD_TOL, "o")
    assert_close(lse, ref["lse"].numpy(), FORWARD_TOL, "lse")
    for key in stats:
        assert_close(stats[key], ref[key].numpy(), FORWARD_TOL, key)


@pytest.mark.parametrize("impl", IMPLS)
def test_fully_masked_rows_give_zero_and_sink_lse(impl):
    q, k, v, kw = make_case("fully_masked_rows_sink")
    o, lse = call(sinklab.attention, q, k, v, impl=impl, return_lse=True, **kw)
    np.testing.assert_array_equal(o[:, :, :2], 0.0)
    np.testing.assert_array_equal(lse[0, :, :2], np.repeat(kw["sink_logits"][:, None], 2, axis=1))
    kw.pop("sink_logits")
    o, lse = call(sinklab.attention, q, k, v, impl=impl, return_lse=True, **kw)
    np.testing.assert_array_equal(o[:, :, :2], 0.0)
    assert np.isneginf(lse[:, :, :2]).all()
    assert np.isfinite(lse[:, :, 2]).all()


@pytest.mark.parametrize("impl", IMPLS)
def test_logits_near_float32_overflow(impl):
    # q.k around 1e30: any exp() of an unshifted logit overflows; the softmax
    # becomes one-hot on the largest visible logit.
    r = rng_for("overflow")
    q, k, v = normal(r, 1, 2, 6, 16) * 1e15, normal(r, 1, 2, 6, 16) * 1e15, normal(r, 1, 2, 6, 16)
    kw = dict(sink_logits=np.array([5.0, -5.0], np.float32))
    o, lse = call(sinklab.attention, q.astype(np.float32), k.astype(np.float32), v,
                  impl=impl, return_lse=True, **kw)
    ref = oracle(q.astype(np.float32), k.astype(np.float32), v, kw)
    assert_close(o, ref["o"].numpy(), FORWARD_TOL, "o")
    assert_close(lse, ref["lse"].numpy(), FORWARD_TOL, "lse")


@pytest.mark.parametrize("impl", IMPLS)
def test_fresh_inputs_change_the_output(impl):
    # Guards against a kernel that ignores its inputs (and the test against
    # comparing a value with itself).
    q, k, v, kw = make_case("plain_d64")
    o1 = call(sinklab.attention, q, k, v, impl=impl, **kw)
    o2 = call(sinklab.attention, q, k, v[:, :, ::-1].copy(), impl=impl, **kw)
    assert np.abs(o1 - o2).max() > 1e-3


# Frequencies and angles are kept in double: rotations stay exact far from the origin.
@pytest.mark.parametrize("impl", IMPLS)
def test_rope_long_distance(impl):
    r = rng_for("rope_long_distance")
    q, k, v = normal(r, 1, 2, 8, 64, std=2.0), normal(r, 1, 2, 8, 64, std=2.0), normal(r, 1, 2, 8, 64)
    k_pos = np.arange(8, dtype=np.int32)
    kw = dict(causal=False, rope=dict(style="rotate_half"), positions=(k_pos + 30000, k_pos))
    o, lse = call(sinklab.attention, q, k, v, impl=impl, return_lse=True, **kw)
    ref = oracle(q, k, v, kw)
    assert_close(o, ref["o"].numpy(), FORWARD_TOL, "o")
    assert_close(lse, ref["lse"].numpy(), FORWARD_TOL, "lse")
