"""sinklab.TrainModel (the decoder `sinklab train` trains) against an
independent float64 PyTorch decoder: the loss sum and the gradient of every
parameter, for every attention variant.

The reference below writes attention out in full (explicit causal mask, RoPE
rotate-half, GOAT kappa and key MLP, ALiBi distances, the sink logit as an
extra softmax column that is dropped afterwards) and uses no sinklab math."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch (python3-torch) is needed for the reference tests")

import sinklab  # noqa: E402

LOSS_RTOL = 1e-5
# max |g_sinklab - g_torch| / max |g_torch| per tensor. sinklab runs in float32
# (flash attention, BLAS): observed 1e-6 to 3e-5. The largest are GOAT key-MLP
# gradients: the softmax ignores a constant key bias, so d loss/d u sums to
# zero over keys and its float32 rounding (~1e-7 of sum |du|) is left alone.
GRAD_TOL = 1e-4

BASE = dict(vocab=37, dim=32, n_layers=2, n_heads=4, n_kv_heads=4, seq_len=16)

# name -> (model config, batch, T)
CASES = {
    "vanilla_rope": (dict(variant="vanilla", rope_theta=500.0), 2, 13),
    "vanilla_no_rope": (dict(variant="vanilla", rope=False, hidden=40), 2, 9),
    "vanilla_untied_gqa": (dict(variant="vanilla", tied_embeddings=False, n_kv_heads=2, norm_eps=1e-6), 2, 11),
    "sink_token_gqa": (dict(variant="sink-token", n_kv_heads=2), 2, 12),
    "sink_logit": (dict(variant="sink-logit"), 2, 14),
    "sink_logit_gqa_untied": (dict(variant="sink-logit", n_kv_heads=2, tied_embeddings=False, hidden=48), 2, 17),
    "goat_gqa": (dict(variant="goat", n_kv_heads=2, goat_rank=4, goat_abs_rank=3, goat_u_hidden=8), 2, 16),
    "goat_rank1_no_abs": (dict(variant="goat", goat_rank=1, goat_abs_rank=0, goat_u_hidden=5, goat_base=100.0), 2, 10),
    "goat_untied_mqa": (dict(variant="goat", n_kv_heads=1, tied_embeddings=False, goat_rank=3, goat_abs_rank=2,
                             goat_u_hidden=6, seq_len=8), 2, 15),
    "alibi": (dict(variant="alibi"), 2, 15),
    "relu_attention_gqa": (dict(variant="relu-attention", n_kv_heads=2), 2, 13),
    "softmax_off_by_one": (dict(variant="softmax-off-by-one"), 2, 11),
    "alibi_6_heads_gqa": (dict(variant="alibi", dim=48, n_heads=6, n_kv_heads=3), 2, 12),
}


def config_of(case):
    over, _, _ = CASES[case]
    return {**BASE, **over}


def seed_of(name):
    return sum(ord(c) * 131 ** i for i, c in enumerate(name)) % (2 ** 31)


# ------------------------------------------------------------ parameters ----
def hidden_of(cfg):
    if cfg.get("hidden", 0) > 0:
        return cfg["hidden"]
    h = (8 * cfg["dim"] + 2) // 3  # 8/3 dim rounded up to a multiple of 32
    return (h + 31) // 32 * 32


def expected_shapes(cfg):
    """Parameter names and shapes, written down from the model description."""
    D, H, Hkv, V = cfg["dim"], cfg["n_heads"], cfg["n_kv_heads"], cfg["vocab"]
    hd, F = D // H, hidden_of(cfg)
    shapes = {"model.embed_tokens.weight": (V, D)}
    for l in range(cfg["n_layers"]):
        p = f"model.layers.{l}."
        shapes[p + "input_layernorm.weight"] = (D,)
        shapes[p + "self_attn.q_proj.weight"] = (H * hd, D)
        shapes[p + "self_attn.k_proj.weight"] = (Hkv * hd, D)
        shapes[p + "self_attn.v_proj.weight"] = (Hkv * hd, D)
        shapes[p + "self_attn.o_proj.weight"] = (D, H * hd)
        if cfg["variant"] in ("sink-logit", "softmax-off-by-one"):
            shapes[p + "self_attn.sinks"] = (H,)
        if cfg["variant"] == "goat":
            R, A, Hu = cfg["goat_rank"], cfg["goat_abs_rank"], cfg["goat_u_hidden"]
            shapes[p + "self_attn.prior.lambda_sym"] = (Hkv, R)
            shapes[p + "self_attn.prior.lambda_asym"] = (Hkv, R)
            shapes[p + "self_attn.prior.key_mlp.in.weight"] = (Hu, 2 * A + 2)
            shapes[p + "self_attn.prior.key_mlp.in.bias"] = (Hu,)
            shapes[p + "self_attn.prior.key_mlp.out.weight"] = (Hkv, Hu)
            shapes[p + "self_attn.prior.first_logit"] = (Hkv,)
        shapes[p + "post_attention_layernorm.weight"] = (D,)
        shapes[p + "mlp.gate_proj.weight"] = (F, D)
        shapes[p + "mlp.up_proj.weight"] = (F, D)
        shapes[p + "mlp.down_proj.weight"] = (D, F)
    shapes["model.norm.weight"] = (D,)
    if not cfg.get("tied_embeddings", True):
        shapes["lm_head.weight"] = (V, D)
    return shapes


def random_params(cfg, rng):
    """Values large enough that attention is far from uniform and every prior,
    sink logit and norm weight matters; rounded to float32 (both sides see them)."""
    out = {}
    for name, shape in expected_shapes(cfg).items():
        fan_in = shape[-1]
        if name.endswith("norm.weight") or name.endswith("layernorm.weight"):
            x = rng.uniform(0.5, 1.5, shape)
        elif name.endswith("sinks"):
            # softmax-off-by-one's sink logits are 0 by definition (never trained)
            x = np.zeros(shape) if cfg["variant"] == "softmax-off-by-one" else rng.uniform(-2.0, 3.0, shape)
        elif name.endswith("embed_tokens.weight"):
            x = rng.normal(0.0, 0.5, shape)
        elif "q_proj" in name or "k_proj" in name:
            x = rng.normal(0.0, 1.6 / math.sqrt(fan_in), shape)
        elif "lambda" in name:
            x = rng.normal(0.0, 0.8, shape)
        elif "key_mlp" in name or "first_logit" in name:
            x = rng.normal(0.0, 1.0, shape)
        else:
            x = rng.normal(0.0, 1.0 / math.sqrt(fan_in), shape)
        out[name] = np.asarray(x, np.float32)
    return out


def random_batch(cfg, B, T, rng):
    inputs = rng.integers(0, cfg["vocab"], (B, T)).astype(np.int32)
    if cfg["variant"] == "sink-token":
        inputs[:, 0] = 1  # the data's sink token; the model treats it as any other
    targets = rng.integers(0, cfg["vocab"], (B, T)).astype(np.int32)
    unscored = rng.random((B, T)) < 0.2
    unscored[0, 0] = unscored[1, -1] = True
    targets[unscored] = -1
    targets[0, 1] = -7  # any negative target is unscored
    return inputs, targets


# ------------------------------------------------------------- reference ----
def rms_norm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def rope_rotate_half(x, theta):
    """x [B, heads, T, hd] at positions 0..T-1: pairs (x[i], x[i + hd/2])."""
    T, hd = x.shape[-2], x.shape[-1]
    inv_freq = theta ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]
    cos, sin = torch.cos(ang).repeat(1, 2), torch.sin(ang).repeat(1, 2)
    x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


def fourier_frequencies(rank, base):
    if rank == 1:
        return torch.ones(1, dtype=torch.float64)
    return base ** (-torch.arange(rank, dtype=torch.float64) / (rank - 1))


def press_alibi_slopes(n):
    """ALiBi slopes as in Press et al.'s reference code."""
    def power_of_two(n):
        start = 2.0 ** (-(2.0 ** -(math.log2(n) - 3)))
        return [start * start ** i for i in range(n)]
    if math.log2(n).is_integer():
        return power_of_two(n)
    closest = 2 ** math.floor(math.log2(n))
    return power_of_two(closest) + press_alibi_slopes(2 * closest)[0::2][: n - closest]


def goat_key_prior(cfg, P, T):
    """u [Hkv, T]: MLP of the position features of each key, plus a first-token logit."""
    A, base, Ttrain = cfg["goat_abs_rank"], cfg.get("goat_base", 1e4), cfg["seq_len"]
    t = torch.arange(T, dtype=torch.float64)
    w = fourier_frequencies(A, base) if A > 0 else torch.zeros(0, dtype=torch.float64)
    phi = torch.cat([torch.cos(t[:, None] * w), torch.sin(t[:, None] * w),
                     (t / Ttrain)[:, None], (torch.log1p(t) / math.log1p(Ttrain))[:, None]], 1)
    hidden = torch.nn.functional.silu(phi @ P["key_mlp.in.weight"].T + P["key_mlp.in.bias"])
    u = (hidden @ P["key_mlp.out.weight"].T).T.clone()
    u[:, 0] = u[:, 0] + P["first_logit"]
    return u


def goat_kappa(cfg, P, T):
    """kappa [Hkv, T, T] at d = i - j."""
    w = fourier_frequencies(cfg["goat_rank"], cfg.get("goat_base", 1e4))
    idx = torch.arange(T, dtype=torch.float64)
    d = idx[:, None] - idx[None, :]
    wd = d[None, :, :, None] * w  # [1, T, T, R]
    sym, asym = P["lambda_sym"], P["lambda_asym"]
    return (torch.cos(wd) * sym[:, None, None, :] + torch.sin(wd) * asym[:, None, None, :]).sum(-1)


def attention(cfg, q, k, v, P, drop):
    """q [B, H, T, hd], k/v [B, Hkv, T, hd] -> [B, H, T, hd]."""
    B, H, T, hd = q.shape
    Hkv = k.shape[1]
    variant = cfg["variant"]
    if cfg.get("rope", True) and variant not in ("goat", "alibi") and "rope" not in drop:
        theta = cfg.get("rope_theta", 10000.0)
        q, k = rope_rotate_half(q, theta), rope_rotate_half(k, theta)
    group = H // Hkv
    k = k.repeat_interleave(group, 1)
    v = v.repeat_interleave(group, 1)
    z = (q @ k.transpose(-1, -2)) / math.sqrt(hd)  # [B, H, T, T]
    idx = torch.arange(T)
    if variant == "goat":
        bias = torch.zeros(Hkv, T, T, dtype=torch.float64)
        if "kappa" not in drop:
            bias = bias + goat_kappa(cfg, P, T)
        if "u" not in drop:
            bias = bias + goat_key_prior(cfg, P, T)[:, None, :]
        z = z + bias.repeat_interleave(group, 0)[None]
    if variant == "alibi" and "alibi" not in drop:
        slopes = torch.tensor(press_alibi_slopes(H), dtype=torch.float64)
        dist = (idx[:, None] - idx[None, :]).abs().to(torch.float64)
        z = z - slopes[:, None, None] * dist
    z = z.masked_fill(idx[None, :] > idx[:, None], float("-inf"))
    if variant == "relu-attention" and "relu" not in drop:
        p = torch.relu(z)  # unnormalised; masked logits are -inf, so their weight is 0
    elif variant in ("sink-logit", "softmax-off-by-one") and "sink" not in drop:
        sink_column = P["sinks"][None, :, None, None].expand(B, H, T, 1)
        p = torch.softmax(torch.cat([z, sink_column], -1), -1)[..., :T]
    else:
        p = torch.softmax(z, -1)
    return p @ v


def reference_loss(cfg, params, inputs, targets, drop=()):
    """Sum of the scored tokens' cross-entropy; params: name -> float64 leaf."""
    D, H, Hkv = cfg["dim"], cfg["n_heads"], cfg["n_kv_heads"]
    hd, eps = D // H, cfg.get("norm_eps", 1e-5)
    B, T = inputs.shape
    ids = torch.from_numpy(inputs.astype(np.int64))
    x = params["model.embed_tokens.weight"][ids]
    for l in range(cfg["n_layers"]):
        p = f"model.layers.{l}."
        P = {n[len(p + "self_attn."):].removeprefix("prior."): t for n, t in params.items()
             if n.startswith(p + "self_attn.")}
        h = rms_norm(x, params[p + "input_layernorm.weight"], eps)
        q = (h @ P["q_proj.weight"].T).view(B, T, H, hd).transpose(1, 2)
        k = (h @ P["k_proj.weight"].T).view(B, T, Hkv, hd).transpose(1, 2)
        v = (h @ P["v_proj.weight"].T).view(B, T, Hkv, hd).transpose(1, 2)
        o = attention(cfg, q, k, v, P, drop).transpose(1, 2).reshape(B, T, H * hd)
        x = x + o @ P["o_proj.weight"].T
        h = rms_norm(x, params[p + "post_attention_layernorm.weight"], eps)
        a = torch.nn.functional.silu(h @ params[p + "mlp.gate_proj.weight"].T) * (h @ params[p + "mlp.up_proj.weight"].T)
        x = x + a @ params[p + "mlp.down_proj.weight"].T
    h = rms_norm(x, params["model.norm.weight"], eps)
    head = params.get("lm_head.weight", params["model.embed_tokens.weight"])
    logp = torch.log_softmax(h @ head.T, -1)
    tg = torch.from_numpy(targets.astype(np.int64))
    scored = tg >= 0
    picked = logp.gather(-1, tg.clamp(min=0)[..., None])[..., 0]
    return -(picked * scored).sum()


def reference_gradients(cfg, values, inputs, targets, grad_scale):
    leaves = {n: torch.tensor(v.astype(np.float64), requires_grad=True) for n, v in values.items()}
    loss = reference_loss(cfg, leaves, inputs, targets)
    (loss * grad_scale).backward()
    return loss.item(), {n: t.grad.numpy() for n, t in leaves.items()}


# ----------------------------------------------------------------- tests ----
def prepared(case):
    cfg = config_of(case)
    _, B, T = CASES[case]
    rng = np.random.default_rng(seed_of(case))
    model = sinklab.TrainModel(cfg, seed=3)
    values = random_params(cfg, rng)
    model.set_params(values)
    inputs, targets = random_batch(cfg, B, T, rng)
    return cfg, model, values, inputs, targets


def max_rel_error(actual, expected):
    scale = np.abs(expected).max()
    assert scale > 0, "the reference gradient is zero: the case checks nothing"
    return np.abs(actual.astype(np.float64) - expected).max() / scale


@pytest.mark.parametrize("case", sorted(CASES))
def test_loss_and_gradients(case):
    cfg, model, values, inputs, targets = prepared(case)
    shapes = {n: a.shape for n, a in model.params().items()}
    assert shapes == expected_shapes(cfg)
    for name, a in model.params().items():
        np.testing.assert_array_equal(a, values[name], err_msg=f"{name} did not round-trip through set_params")

    grad_scale = 0.37
    loss, n_scored, grads = model.forward_backward(inputs, targets, grad_scale=grad_scale)
    want_loss, want_grads = reference_gradients(cfg, values, inputs, targets, grad_scale)
    assert n_scored == int((targets >= 0).sum())
    assert abs(loss - want_loss) <= LOSS_RTOL * abs(want_loss), (loss, want_loss)
    assert set(grads) == set(want_grads)
    errors = {}
    for name, want in want_grads.items():
        assert grads[name].dtype == np.float32 and grads[name].shape == want.shape, name
        assert np.isfinite(grads[name]).all(), name
        if cfg["variant"] == "softmax-off-by-one" and name.endswith("sinks"):
            # fixed at 0, never trained: no gradient although the loss depends on it
            assert np.abs(want).max() > 0 and not grads[name].any(), name
            continue
        errors[name] = max_rel_error(grads[name], want)
    worst = max(errors, key=errors.get)
    print(f"{case}: loss {loss:.6f} (torch {want_loss:.6f}), worst gradient {worst}: {errors[worst]:.2e}")
    bad = {n: e for n, e in errors.items() if not e <= GRAD_TOL}
    assert not bad, f"gradients off by more than {GRAD_TOL}: {bad}"


@pytest.mark.parametrize("case", ["sink_logit", "goat_gqa", "alibi_6_heads_gqa"])
def test_gradients_start_fresh_and_forward_loss_agrees(case):
    _, model, _, inputs, targets = prepared(case)
    loss1, n1, grads1 = model.forward_backward(inputs, targets)
    loss2, n2, grads2 = model.forward_backward(inputs, targets)
    loss3, n3 = model.forward_loss(inputs, targets)
    assert n1 == n2 == n3 == int((targets >= 0).sum())
    assert loss1 == loss2 and abs(loss3 - loss1) <= 1e-6 * abs(loss1)
    for name in grads1:
        np.testing.assert_array_equal(grads2[name], grads1[name], err_msg=name)


# Each variant's own term changes the loss by far more than the tolerance, so
# dropping it from the reference would fail the comparison above.
# Softmax-off-by-one's fixed zero logit weighs little against these logits: it
# changes the loss by ~16x the loss tolerance, still enough for the comparison to fail.
@pytest.mark.parametrize("case,term,margin", [("vanilla_rope", "rope", 100), ("sink_logit", "sink", 100),
                                              ("goat_gqa", "kappa", 100), ("goat_gqa", "u", 100),
                                              ("alibi", "alibi", 100), ("relu_attention_gqa", "relu", 100),
                                              ("softmax_off_by_one", "sink", 10)])
def test_each_variant_term_matters(case, term, margin):
    cfg, _, values, inputs, targets = prepared(case)
    leaves = {n: torch.tensor(v.astype(np.float64)) for n, v in values.items()}
    full = reference_loss(cfg, leaves, inputs, targets).item()
    dropped = reference_loss(cfg, leaves, inputs, targets, drop=(term,)).item()
    assert abs(full - dropped) > margin * LOSS_RTOL * abs(full), (full, dropped)


def test_alibi_slopes_match_press():
    for n in (1, 2, 3, 4, 6, 8, 12, 16):
        np.testing.assert_allclose(sinklab.alibi_slopes(n), press_alibi_slopes(n), rtol=1e-6, err_msg=str(n))


def test_bad_config_and_params_raise():
    with pytest.raises(sinklab.Error, match="unknown key 'dimm'"):
        sinklab.TrainModel({**BASE, "dimm": 3}, seed=1)
    with pytest.raises(sinklab.Error, match="unknown attention variant"):
        sinklab.TrainModel({**BASE, "variant": "nope"}, seed=1)
    model = sinklab.TrainModel(BASE, seed=1)
    with pytest.raises(sinklab.Error, match="no parameter named"):
        model.set_params({"model.nope": np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match="shape"):
        model.set_params({"model.norm.weight": np.zeros(5, np.float32)})
    ids = np.zeros((2, 4), np.int32)
    with pytest.raises(ValueError, match="targets"):
        model.forward_backward(ids, np.zeros((2, 3), np.int32))
    with pytest.raises(sinklab.Error, match="outside the vocabulary"):
        model.forward_loss(ids + 37, ids)
