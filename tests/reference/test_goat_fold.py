"""sinklab.goat_fold: folded channels reproduce content + kappa + u exactly,
checked against the torch oracle."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch (python3-torch) is needed for the reference tests")

import sinklab  # noqa: E402
import torch_attention  # noqa: E402
from attention_cases import normal, rng_for, sorted_positions, torch_arguments  # noqa: E402
from compare import IMPLS, assert_close, call  # noqa: E402

TOL = 1e-5


def problem(name, with_bias, with_positions, content_scale):
    r = rng_for(name)
    b, h, g, n_q, n_k, dc, rank = 2, 4, 2, 6, 11, 16, 3
    q, k, v = normal(r, b, h, n_q, dc), normal(r, b, g, n_k, dc), normal(r, b, g, n_k, 8)
    prior = dict(goat_lambda_sym=normal(r, g, rank), goat_lambda_asym=normal(r, g, rank), goat_base=500.0)
    if with_bias:
        prior["key_bias"] = normal(r, 1, g, n_k)
    positions = None
    if with_positions:
        k_pos = sorted_positions(r, b, n_k, 0, 60)
        positions = (k_pos[:, -n_q:] + 2, k_pos)
    return q, k, v, prior, positions, content_scale


CONFIGS = {
    "plain": (False, False, None),
    "key_bias": (True, False, None),
    "positions_and_bias": (True, True, None),
    "content_scale": (False, True, 0.5),
}


def fold(q, k, prior, positions, content_scale):
    return sinklab.goat_fold(q, k, lambda_sym=prior["goat_lambda_sym"], lambda_asym=prior["goat_lambda_asym"],
                             base=prior["goat_base"], key_bias=prior.get("key_bias"),
                             positions=positions, content_scale=content_scale)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_folded_dot_products_are_the_prior_logits(config):
    q, k, v, prior, positions, cs = problem("fold/" + config, *CONFIGS[config])
    q_t, k_t = fold(q, k, prior, positions, cs)
    rank = prior["goat_lambda_sym"].shape[1]
    assert q_t.shape == q.shape[:3] + (q.shape[3] + 2 * rank + 1,)
    assert k_t.shape == k.shape[:3] + (k.shape[3] + 2 * rank + 1,)
    group = q.shape[1] // k.shape[1]
    folded = torch.einsum("bhid,bhjd->bhij", torch.from_numpy(q_t.astype(np.float64)),
                          torch.from_numpy(k_t.astype(np.float64)).repeat_interleave(group, dim=1))
    kw = dict(causal=False, prior=prior, scale=cs if cs else 1.0 / math.sqrt(q.shape[3]))
    if positions is not None:
        kw["positions"] = positions
    # The oracle's probabilities are softmax(z); recover z up to a row constant
    # by comparing log-probabilities, which is what attention sees.
    t = [torch.from_numpy(x.astype(np.float64)) for x in (q, k, v)]
    ref = torch_attention.attention(*t, **torch_arguments(kw))
    want = torch.log(ref["prob"]) + ref["lse"][..., None]
    assert_close(folded.numpy(), want.numpy(), TOL, "q~.k~")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_attention_on_folded_channels(config, impl):
    q, k, v, prior, positions, cs = problem("fold/" + config, *CONFIGS[config])
    q_t, k_t = fold(q, k, prior, positions, cs)
    kw = dict(window=5, sink_keys=1, sink_logits=np.array([0.5, -1.0, 2.0, -3.0], np.float32))
    if positions is not None:
        kw["positions"] = positions
    o, lse = call(sinklab.attention, q_t, k_t, v, impl=impl, return_lse=True, scale=1.0, **kw)
    ref_kw = dict(kw, prior=prior, scale=cs if cs else 1.0 / math.sqrt(q.shape[3]))
    t = [torch.from_numpy(x.astype(np.float64)) for x in (q, k, v)]
    ref = torch_attention.attention(*t, **torch_arguments(ref_kw))
    assert_close(o, ref["o"].numpy(), TOL, "o")
    assert_close(lse, ref["lse"].numpy(), TOL, "lse")
