"""sinklab.attention_backward (every impl) against torch.autograd through the
independent float64 oracle."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch (python3-torch) is needed for the reference tests")

import sinklab  # noqa: E402
import torch_attention  # noqa: E402
from attention_cases import CASES, PARAM_GRADS, make_case, normal, rng_for, torch_arguments  # noqa: E402
from compare import IMPLS, assert_close, call  # noqa: E402

# Gradient bounds (relative L2 against float64 autograd on the same float32 inputs):
# - 'reference' computes in float64 and rounds once to float32: the same 1e-5
#   bound as the forward holds with a wide margin (observed ~1e-7).
# - 'flash' works in float32. dS = P * (dP - D) subtracts D = dO.O, a dot product
#   of length v_dim whose terms cancel, and the parameter gradients sum dS over
#   all rows and keys, again with cancelling signs. Each float32 sum of n terms
#   carries ~sqrt(n) * 6e-8 relative error of its absolute-value sum; two such
#   stages over n <= 128 terms with a cancellation ratio up to ~10 give ~1e-5,
#   so 1e-4 keeps a 10x margin without hiding a wrong formula (a wrong term is
#   an O(1) error).
GRAD_TOL = {"reference": 1e-5, "flash": 1e-4}


def autograd_reference(q, k, v, kw, d_o):
    leaves = [torch.tensor(x.astype(np.float64), requires_grad=True) for x in (q, k, v)]
    targs = torch_arguments(kw, requires_grad=True)
    out = torch_attention.attention(*leaves, **targs)
    (out["o"] * torch.from_numpy(d_o.astype(np.float64))).sum().backward()
    grads = {"dq": leaves[0].grad, "dk": leaves[1].grad, "dv": leaves[2].grad}
    for name, leaf in PARAM_GRADS.items():
        if leaf in targs and isinstance(targs[leaf], torch.Tensor):
            grads[name] = targs[leaf].grad
    return {name: g.numpy() for name, g in grads.items()}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", CASES)
def test_gradients(case, impl):
    q, k, v, kw = make_case(case)
    o, lse = call(sinklab.attention, q, k, v, impl=impl, return_lse=True, **kw)
    d_o = normal(rng_for(case + "/d_o"), *o.shape)
    grads = call(sinklab.attention_backward, q, k, v, o, lse, d_o, impl=impl, **kw)
    expected = autograd_reference(q, k, v, kw, d_o)
    assert set(grads) == set(expected), f"gradient names: {sorted(grads)} vs {sorted(expected)}"
    for name, want in expected.items():
        assert grads[name].dtype == np.float32
        assert_close(grads[name], want, GRAD_TOL[impl], name)


@pytest.mark.parametrize("impl", IMPLS)
def test_fully_masked_rows_have_zero_gradient(impl):
    q, k, v, kw = make_case("fully_masked_rows_sink")
    o, lse = call(sinklab.attention, q, k, v, impl=impl, return_lse=True, **kw)
    d_o = normal(rng_for("masked/d_o"), *o.shape)
    grads = call(sinklab.attention_backward, q, k, v, o, lse, d_o, impl=impl, **kw)
    np.testing.assert_array_equal(grads["dq"][:, :, :2], 0.0)
    assert np.abs(grads["dq"][:, :, 2]).max() > 0
