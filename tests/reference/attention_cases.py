"""Random attention problems covering every AttnSpec feature, as sinklab
keyword arguments plus the matching float64 torch arguments."""
import zlib

import numpy as np
import torch

F32 = np.float32


def rng_for(name):
    """A seeded generator per case name: fresh inputs per case, reproducible runs."""
    return np.random.default_rng(zlib.crc32(name.encode()))


def normal(rng, *shape, std=1.0):
    return (rng.standard_normal(shape) * std).astype(F32)


def qkv(rng, b, h, g, n_q, n_k, d, dv=None, std=1.0):
    return (normal(rng, b, h, n_q, d, std=std), normal(rng, b, g, n_k, d, std=std),
            normal(rng, b, g, n_k, dv or d))


def sorted_positions(rng, batch, n, low, high):
    """Strictly increasing positions with gaps, one row per batch entry."""
    return np.stack([np.sort(rng.choice(np.arange(low, high), size=n, replace=False))
                     for _ in range(batch)]).astype(np.int32)


def _case(name):
    r = rng_for(name)
    kw = {}
    if name == "plain_d64":
        q, k, v = qkv(r, 2, 2, 2, 17, 17, 64)
    elif name == "noncausal_d8":
        q, k, v = qkv(r, 2, 3, 3, 5, 9, 8)
        kw = dict(causal=False)
    elif name == "gqa_d80":
        q, k, v = qkv(r, 1, 6, 2, 7, 12, 80)
    elif name == "mqa_d128":
        q, k, v = qkv(r, 2, 4, 1, 6, 6, 128)
    elif name == "v_dim_differs":
        q, k, v = qkv(r, 1, 2, 1, 9, 9, 32, dv=24)
    elif name == "sink_logits":
        q, k, v = qkv(r, 2, 4, 2, 10, 10, 16)
        kw = dict(sink_logits=np.array([-10.0, 10.0, r.uniform(-10, 10), 0.0], F32))
    elif name == "sink_logits_noncausal":
        q, k, v = qkv(r, 1, 3, 3, 4, 6, 8)
        kw = dict(causal=False, sink_logits=r.uniform(-10, 10, 3).astype(F32))
    elif name == "window_sink_keys_decode":
        q, k, v = qkv(r, 2, 2, 1, 3, 20, 32)
        kw = dict(window=5, sink_keys=2)
    elif name == "window_noncausal":
        q, k, v = qkv(r, 1, 2, 2, 12, 12, 16)
        kw = dict(causal=False, window=3, sink_keys=1)
    elif name == "positions_noncontiguous":
        q, k, v = qkv(r, 2, 2, 2, 6, 14, 16)
        kpos = sorted_positions(r, 2, 14, 0, 40)
        qpos = kpos[:, -6:] + 1
        kw = dict(positions=(qpos, kpos), window=8, sink_keys=1)
    elif name == "positions_shared_k_only":
        q, k, v = qkv(r, 2, 2, 1, 4, 9, 16)
        kw = dict(positions=(None, np.array([0, 1, 2, 10, 11, 12, 13, 14, 15], np.int32)))
    elif name in ("fully_masked_rows", "fully_masked_rows_sink"):
        # Queries far past every key with a small window: rows 0 and 1 see nothing.
        q, k, v = qkv(r, 1, 2, 1, 3, 8, 8)
        kw = dict(positions=(np.array([50, 51, 3], np.int32), np.arange(8, dtype=np.int32)), window=4)
        if name.endswith("sink"):
            kw["sink_logits"] = np.array([-3.5, 7.25], F32)
    elif name == "length1":
        q, k, v = qkv(r, 1, 1, 1, 1, 1, 8)
    elif name == "length1_query":
        q, k, v = qkv(r, 2, 2, 1, 1, 33, 64)
        kw = dict(sink_logits=np.array([1.5, -2.0], F32))
    elif name == "softcap":
        q, k, v = qkv(r, 1, 2, 2, 11, 11, 16, std=3.0)
        kw = dict(softcap=20.0, scale=1.0)
    elif name == "explicit_scale":
        q, k, v = qkv(r, 1, 2, 2, 8, 8, 16)
        kw = dict(scale=0.37)
    elif name == "rope_rotate_half":
        q, k, v = qkv(r, 1, 2, 1, 9, 9, 64)
        kw = dict(rope=dict(style="rotate_half", theta=10000.0))
    elif name == "rope_interleaved_partial":
        q, k, v = qkv(r, 1, 2, 2, 9, 9, 80)
        kw = dict(rope=dict(style="interleaved", theta=500000.0, rotary_dim=32))
    elif name == "rope_linear":
        q, k, v = qkv(r, 1, 2, 2, 6, 6, 32)
        kw = dict(rope=dict(style="rotate_half", scaling="linear", factor=4.0),
                  positions=(np.arange(60, 66, dtype=np.int32), np.arange(60, 66, dtype=np.int32)))
    elif name == "rope_ntk":
        q, k, v = qkv(r, 1, 2, 2, 6, 6, 32)
        kw = dict(rope=dict(style="interleaved", scaling="ntk", factor=2.0))
    elif name == "rope_yarn":
        q, k, v = qkv(r, 1, 2, 1, 5, 12, 64)
        pos = sorted_positions(r, 1, 12, 0, 200)[0]
        kw = dict(rope=dict(style="rotate_half", scaling="yarn", factor=4.0, original_context=64),
                  positions=(pos[-5:], pos))
    elif name == "rope_yarn_attn_factor":
        q, k, v = qkv(r, 1, 2, 2, 6, 6, 32)
        kw = dict(rope=dict(style="interleaved", scaling="yarn", factor=8.0, original_context=32,
                            beta_fast=16.0, beta_slow=2.0, attn_factor=1.3))
    elif name == "rope_llama3":
        q, k, v = qkv(r, 1, 2, 1, 6, 6, 128)
        kw = dict(rope=dict(style="rotate_half", theta=500000.0, scaling="llama3", factor=8.0,
                            original_context=64, low_freq_factor=1.0, high_freq_factor=4.0),
                  positions=(np.arange(90, 96, dtype=np.int32), np.arange(90, 96, dtype=np.int32)))
    elif name == "goat":
        q, k, v = qkv(r, 2, 4, 2, 10, 10, 16)
        kw = dict(prior=dict(goat_lambda_sym=normal(r, 2, 4), goat_lambda_asym=normal(r, 2, 4)))
    elif name == "goat_rank1_base":
        q, k, v = qkv(r, 1, 2, 1, 7, 7, 8)
        kw = dict(prior=dict(goat_lambda_sym=normal(r, 1, 1), goat_lambda_asym=normal(r, 1, 1),
                             goat_base=100.0), causal=False)
    elif name == "key_bias_batched":
        q, k, v = qkv(r, 2, 2, 2, 8, 8, 16)
        bias = normal(r, 2, 2, 8, std=2.0)
        bias[0, 1, 3] = -np.inf
        bias[1, 0, 0] = -np.inf
        kw = dict(prior=dict(key_bias=bias))
    elif name == "key_bias_broadcast":
        q, k, v = qkv(r, 3, 4, 2, 6, 9, 16)
        kw = dict(prior=dict(key_bias=normal(r, 1, 2, 9, std=2.0)))
    elif name == "alibi":
        q, k, v = qkv(r, 1, 4, 4, 12, 12, 16)
        kw = dict(prior=dict(alibi_slopes=np.array([0.5, 0.25, 0.125, 0.0625], F32)))
    elif name == "huge_logits":
        # Logits around +-85, where exp() of a raw logit overflows float32.
        q, k, v = qkv(r, 1, 2, 2, 8, 8, 64)
        largest = np.abs(np.einsum("bhid,bhjd->bhij", q, k)).max() / 8.0
        q = (q * (85.0 / largest)).astype(F32)
        kw = dict(scale=1.0 / 8.0, sink_logits=np.array([80.0, -10.0], F32))
    elif name == "combined":
        q, k, v = qkv(r, 2, 4, 2, 7, 15, 32, dv=16)
        kpos = sorted_positions(r, 2, 15, 0, 30)
        kw = dict(window=6, sink_keys=2, sink_logits=r.uniform(-10, 10, 4).astype(F32),
                  positions=(kpos[:, -7:], kpos),
                  rope=dict(style="rotate_half", theta=10000.0, rotary_dim=16),
                  softcap=15.0,
                  prior=dict(goat_lambda_sym=normal(r, 2, 3), goat_lambda_asym=normal(r, 2, 3),
                             key_bias=normal(r, 1, 2, 15), alibi_slopes=r.uniform(0, 0.5, 4).astype(F32)))
    elif name == "combined_mqa_interleaved":
        q, k, v = qkv(r, 1, 3, 1, 5, 11, 80)
        kw = dict(causal=False, window=4, sink_keys=1, sink_logits=r.uniform(-10, 10, 3).astype(F32),
                  rope=dict(style="interleaved", scaling="linear", factor=2.0),
                  prior=dict(goat_lambda_sym=normal(r, 1, 5), goat_lambda_asym=normal(r, 1, 5),
                             key_bias=normal(r, 1, 1, 11)))
    else:
        raise KeyError(name)
    return q, k, v, kw


CASES = [
    "plain_d64", "noncausal_d8", "gqa_d80", "mqa_d128", "v_dim_differs", "sink_logits",
    "sink_logits_noncausal", "window_sink_keys_decode", "window_noncausal",
    "positions_noncontiguous", "positions_shared_k_only", "fully_masked_rows",
    "fully_masked_rows_sink", "length1", "length1_query", "softcap", "explicit_scale",
    "rope_rotate_half", "rope_interleaved_partial", "rope_linear", "rope_ntk", "rope_yarn",
    "rope_yarn_attn_factor", "rope_llama3", "goat", "goat_rank1_base", "key_bias_batched",
    "key_bias_broadcast", "alibi", "huge_logits", "combined", "combined_mqa_interleaved",
]

# sinklab gradient name -> torch leaf name.
PARAM_GRADS = {
    "d_sink_logits": "sink_logits",
    "d_goat_lambda_sym": "goat_lambda_sym",
    "d_goat_lambda_asym": "goat_lambda_asym",
    "d_key_bias": "key_bias",
    "d_alibi_slopes": "alibi_slopes",
}


def make_case(name):
    return _case(name)


def torch_arguments(kw, requires_grad=False):
    """sinklab keyword arguments -> torch_attention.attention keyword arguments
    (float64 leaves for the learnable parameters)."""
    out = {}

    def leaf(x):
        return torch.tensor(np.asarray(x, np.float64), requires_grad=requires_grad)

    for key in ("causal", "window", "sink_keys", "softcap", "scale", "rope"):
        if key in kw:
            out[key] = kw[key]
    if "sink_logits" in kw:
        out["sink_logits"] = leaf(kw["sink_logits"])
    if "positions" in kw:
        out["positions"] = tuple(None if p is None else torch.as_tensor(np.asarray(p, np.int64))
                                 for p in kw["positions"])
    for key, value in kw.get("prior", {}).items():
        out[key] = value if key == "goat_base" else leaf(value)
    return out
