"""Tiny gpt-oss, Gemma 2 and Gemma 3 (text) checkpoints with float64 golden logits.

make_tiny_models.py calls build_all() after writing its own folders. Each folder
follows the same contract (config.json, model.safetensors, ids.txt, logits.f32)
and carries the tensor names, shapes and config keys of the released
checkpoints (openai/gpt-oss-20b, google/gemma-2-2b, google/gemma-3-1b-it) at a
tiny size:

  gpt_oss        experts in the released MXFP4 form (*_blocks / *_scales, uint8)
  gpt_oss_float  the same model, experts in the float layout Hugging Face uses
                 after dequantising (gate_up_proj [E, hidden, 2*ff], x @ W)
  gemma2         sandwich norms, (1 + w) RMSNorm, GeGLU, soft-caps, local/global
  gemma3         q/k norms, local/global layers by pattern, two RoPE bases

The forward passes follow Hugging Face's modeling_gpt_oss.py, modeling_gemma2.py
and modeling_gemma3.py, run in float64 on the float32 (or MXFP4) weights and
share no code with the C++ runtime. Every feature the tests rely on is checked
to be live: switching it off must change the logits (and a sliding window must
leave the first `window` rows untouched), and where a second formulation is
cheap the script computes it and requires agreement.
"""

import math

from tiny_model_files import write_folder

torch = None  # the caller's PyTorch module, set by build_all()

# FP4 E2M1 magnitudes of codes 0..7; bit 3 of a code is the sign.
FP4_E2M1 = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
MXFP4_GROUP = 32  # values per E8M0 scale; 16 bytes of two nibbles each

# ------------------------------------------------------------ shared math ----


def rms_norm(x, weight, eps, one_plus=False):
    """RMSNorm over the last axis; Gemma scales by (1 + w), gpt-oss by w."""
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return y * (1.0 + weight) if one_plus else y * weight


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def soft_cap(x, cap):
    return cap * torch.tanh(x / cap)


def rope_rotate_half(x, positions, inv, attn_factor=1.0):
    """x [heads, seq, d]: x*cos + rotate_half(x)*sin, cos/sin over [freqs, freqs]."""
    freqs = positions[:, None] * inv[None, :]
    emb = torch.cat([freqs, freqs], dim=-1)
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * (emb.cos() * attn_factor) + rotated * (emb.sin() * attn_factor)


def rope_by_halves(x, positions, inv, attn_factor=1.0):
    """The same rotation written as gpt-oss does: halves (a, b) -> (a cos - b sin, b cos + a sin)."""
    freqs = positions[:, None] * inv[None, :]
    cos, sin = freqs.cos() * attn_factor, freqs.sin() * attn_factor
    a, b = torch.chunk(x, 2, dim=-1)
    return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)


def visible_keys(seq, window):
    """Causal mask; a window W lets query i see keys i-W+1..i."""
    i = torch.arange(seq)[:, None]
    j = torch.arange(seq)[None, :]
    visible = j <= i
    if window:
        visible = visible & (j > i - window)
    return visible


def attention_logits(q, k, scale, window, softcap):
    """q [H, S, d], k [Hkv, S, d] -> masked logits [H, S, S]; kv head j serves
    query heads j*rep .. (j+1)*rep-1."""
    k = k.repeat_interleave(q.shape[0] // k.shape[0], dim=0)
    z = (q @ k.transpose(-1, -2)) * scale
    if softcap:
        z = soft_cap(z, softcap)
    return z.masked_fill(~visible_keys(q.shape[1], window), float("-inf"))


def attend(q, k, v, scale, window=0, softcap=None, sinks=None):
    """Attention output [H, S, d]. Sink logits enter as one extra softmax column
    per head (no scale, no value) that is dropped after the softmax."""
    z = attention_logits(q, k, scale, window, softcap)
    v = v.repeat_interleave(q.shape[0] // v.shape[0], dim=0)
    if sinks is None:
        return torch.softmax(z, dim=-1) @ v
    column = sinks.reshape(-1, 1, 1).expand(z.shape[0], z.shape[1], 1)
    combined = torch.cat([z, column], dim=-1)
    combined = combined - combined.max(dim=-1, keepdim=True).values
    return torch.softmax(combined, dim=-1)[..., :-1] @ v


def attend_sinks_by_lse(q, k, v, scale, window, sinks):
    """Second formulation of sink attention: the plain softmax output times the
    share the keys keep, exp(LSE) / (exp(LSE) + exp(S)) = sigmoid(LSE - S)."""
    z = attention_logits(q, k, scale, window, None)
    v = v.repeat_interleave(q.shape[0] // v.shape[0], dim=0)
    lse = torch.logsumexp(z, dim=-1, keepdim=True)
    keep = torch.sigmoid(lse - sinks.reshape(-1, 1, 1))
    return (torch.softmax(z, dim=-1) @ v) * keep


def split_heads(x, heads, head_dim):
    return x.reshape(x.shape[0], heads, head_dim).transpose(0, 1)


def merge_heads(x):
    return x.transpose(0, 1).reshape(x.shape[1], -1)


def relative_change(a, b):
    return float((a - b).abs().max() / b.abs().max())


def require_live(name, what, base, changed, at_least=1e-3):
    change = relative_change(changed, base)
    if not change > at_least:
        raise RuntimeError(f"{name}: {what} does not change the logits (relative change {change:.2e})")
    return change


def require_same(name, what, a, b, tol=1e-10):
    diff = relative_change(a, b)
    if not diff <= tol:
        raise RuntimeError(f"{name}: {what} disagree (relative difference {diff:.2e})")


def require_window_rows(name, window, windowed, unwindowed):
    """Rows before the window fills see the same keys with or without it (up to
    float64 rounding: other rows change which products BLAS batches together)."""
    require_same(name, "rows the sliding window cannot reach", windowed[:window], unwindowed[:window])
    require_live(name, "the sliding window", windowed[window:], unwindowed[window:])


# ---------------------------------------------------------------- gpt-oss ----


def yarn_frequencies(head_dim, theta, scaling, max_positions, truncate=None):
    """YaRN inverse frequencies and attention factor as Hugging Face computes them
    (modeling_rope_utils._compute_yarn_parameters): correction range from
    beta_fast / beta_slow over the original context, floored / ceiled only when
    `truncate` (default true), clamped to [0, d-1]; a linear ramp over the d/2
    frequencies blends interpolation (freq / factor) and extrapolation (freq);
    attention factor 0.1 ln(factor) + 1 unless given."""
    factor = float(scaling["factor"])
    original = float(scaling.get("original_max_position_embeddings") or max_positions)
    beta_fast = float(scaling.get("beta_fast") or 32)
    beta_slow = float(scaling.get("beta_slow") or 1)
    if truncate is None:
        truncate = scaling.get("truncate", True)
    attn_factor = scaling.get("attention_factor")
    if attn_factor is None:
        attn_factor = 0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0

    def correction_dim(rotations):
        return head_dim * math.log(original / (rotations * 2 * math.pi)) / (2 * math.log(theta))

    low, high = correction_dim(beta_fast), correction_dim(beta_slow)
    if truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, head_dim - 1)
    if low == high:
        high += 0.001
    index = torch.arange(head_dim // 2, dtype=torch.float64)
    ramp = ((index - low) / (high - low)).clamp(0, 1)
    extrapolation = 1.0 / theta ** (2 * index / head_dim)
    interpolation = extrapolation / factor
    keep = 1 - ramp  # weight of the unscaled frequency
    return interpolation * (1 - keep) + extrapolation * keep, float(attn_factor)


def fp4_table():
    mags = torch.tensor(FP4_E2M1, dtype=torch.float64)
    return torch.cat([mags, -mags])


def mxfp4_dequantize(blocks, scales):
    """blocks uint8 [E, rows, K/32, 16], scales uint8 [E, rows, K/32] -> float64
    [E, rows, K]: byte b of group g holds element g*32 + 2b in its low nibble and
    g*32 + 2b + 1 in its high nibble; every value of a group is multiplied by
    2^(scale - 127) (E8M0)."""
    table = fp4_table()
    low = table[(blocks & 0x0F).long()]
    high = table[(blocks >> 4).long()]
    values = torch.stack([low, high], dim=-1).reshape(*blocks.shape[:-1], MXFP4_GROUP)
    values = values * torch.pow(2.0, scales.to(torch.float64) - 127.0)[..., None]
    return values.reshape(blocks.shape[0], blocks.shape[1], -1)


def mxfp4_element(blocks, scales, e, row, k):
    """One dequantised value, decoded bit by bit (a check of mxfp4_dequantize)."""
    byte = int(blocks[e, row, k // MXFP4_GROUP, (k % MXFP4_GROUP) // 2])
    code = (byte >> 4) if k % 2 else (byte & 0x0F)
    sign = -1.0 if code & 0x8 else 1.0
    exponent, mantissa = (code >> 1) & 0x3, code & 0x1
    magnitude = mantissa * 0.5 if exponent == 0 else (1.0 + 0.5 * mantissa) * 2.0 ** (exponent - 1)
    return sign * magnitude * 2.0 ** (int(scales[e, row, k // MXFP4_GROUP]) - 127)


def random_mxfp4(gen, experts, rows, cols, exponents):
    """Random MXFP4 codes for [experts, rows, cols] with E8M0 scales drawn from
    `exponents` (powers of two)."""
    groups = cols // MXFP4_GROUP
    blocks = torch.randint(0, 256, (experts, rows, groups, 16), generator=gen).to(torch.uint8)
    pick = torch.randint(0, len(exponents), (experts, rows, groups), generator=gen)
    scales = (torch.tensor(exponents)[pick] + 127).to(torch.uint8)
    return blocks, scales


def gpt_oss_config():
    layers = 4
    return {
        "architectures": ["GptOssForCausalLM"],
        "attention_bias": True,
        "attention_dropout": 0.0,
        "eos_token_id": 96,
        "experts_per_token": 2,
        "head_dim": 16,
        "hidden_act": "silu",
        # hidden 96, 2*ff 64 and ff 32 all differ: a transposed expert matrix
        # cannot pass for the right one. Both are multiples of the MXFP4 group.
        "hidden_size": 96,
        "initial_context_length": 512,
        "initializer_range": 0.02,
        "intermediate_size": 32,
        "layer_types": ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(layers)],
        "max_position_embeddings": 2048,
        "model_type": "gpt_oss",
        "num_attention_heads": 4,
        "num_experts_per_tok": 2,
        "num_hidden_layers": layers,
        "num_key_value_heads": 2,
        "num_local_experts": 4,
        "output_router_logits": False,
        "pad_token_id": 95,
        "quantization_config": {
            "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                                       "model.embed_tokens", "lm_head"],
            "quant_method": "mxfp4",
        },
        "rms_norm_eps": 1e-05,
        # max_position_embeddings = factor x original, as in the release (131072 =
        # 32 x 4096): transformers versions that derive the factor from that ratio
        # agree with those that read it. With head_dim 16 and theta 150000 the
        # correction range over 512 positions is [0.63, 2.95]: the ramp covers
        # fast-rotating frequencies and truncation would change it.
        "rope_scaling": {"beta_fast": 32.0, "beta_slow": 1.0, "factor": 4.0,
                         "original_max_position_embeddings": 512, "rope_type": "yarn", "truncate": False},
        "rope_theta": 150000,
        "router_aux_loss_coef": 0.9,
        "sliding_window": 6,
        "swiglu_limit": 7.0,
        "tie_word_embeddings": False,
        "transformers_version": "4.55.0.dev0",
        "use_cache": True,
        "vocab_size": 97,
    }


def gpt_oss_weights(cfg, gen):
    """Random weights under the released names; experts as MXFP4 blocks/scales."""
    d, ff, n_exp = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_local_experts"]
    n_heads, n_kv, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]

    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    def mat(rows, cols, gain=1.0):
        return (gain * randn(rows, cols) / math.sqrt(cols)).float()

    def vec(n, scale, mean=0.0):
        return (mean + scale * randn(n)).float()

    W = {"model.embed_tokens.weight": randn(cfg["vocab_size"], d).float()}
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        a = p + "self_attn."
        W[p + "input_layernorm.weight"] = vec(d, 0.2, 1.0)
        W[p + "post_attention_layernorm.weight"] = vec(d, 0.2, 1.0)
        for proj, rows in (("q", n_heads * hd), ("k", n_kv * hd), ("v", n_kv * hd)):
            W[a + f"{proj}_proj.weight"] = mat(rows, d, 1.5)
            W[a + f"{proj}_proj.bias"] = vec(rows, 0.3)
        W[a + "o_proj.weight"] = mat(d, n_heads * hd)
        W[a + "o_proj.bias"] = vec(d, 0.3)
        W[a + "sinks"] = vec(n_heads, 1.5)
        W[p + "mlp.router.weight"] = mat(n_exp, d, 2.0)
        W[p + "mlp.router.bias"] = vec(n_exp, 0.5)
        e = p + "mlp.experts."
        W[e + "gate_up_proj_blocks"], W[e + "gate_up_proj_scales"] = random_mxfp4(gen, n_exp, 2 * ff, d, (-3, -2))
        W[e + "gate_up_proj_bias"] = torch.stack([vec(2 * ff, 0.5) for _ in range(n_exp)])
        W[e + "down_proj_blocks"], W[e + "down_proj_scales"] = random_mxfp4(gen, n_exp, d, ff, (-7, -6))
        W[e + "down_proj_bias"] = torch.stack([vec(d, 0.3) for _ in range(n_exp)])
    W["model.norm.weight"] = vec(d, 0.2, 1.0)
    W["lm_head.weight"] = mat(cfg["vocab_size"], d)
    return W


def float_expert_layout(W):
    """The MXFP4 checkpoint rewritten as Hugging Face holds it after dequantising:
    gate_up_proj [E, hidden, 2*ff] and down_proj [E, ff, hidden], both applied as
    x @ W (the dequantised [E, rows, K] transposed)."""
    out = {}
    for name, t in W.items():
        if name.endswith("_scales"):
            continue
        if name.endswith("_blocks"):
            stem = name[: -len("_blocks")]
            values = mxfp4_dequantize(t, W[stem + "_scales"])
            out[stem] = values.transpose(1, 2).contiguous().float()
        else:
            out[name] = t
    return out


def expert_matrices(W, e):
    """(gate_up [E, hidden, 2ff], gate_up_bias, down [E, ff, hidden], down_bias), float64,
    read from whichever layout the checkpoint has."""
    if e + "gate_up_proj_blocks" in W:
        gate_up = mxfp4_dequantize(W[e + "gate_up_proj_blocks"], W[e + "gate_up_proj_scales"]).transpose(1, 2)
        down = mxfp4_dequantize(W[e + "down_proj_blocks"], W[e + "down_proj_scales"]).transpose(1, 2)
    else:
        gate_up, down = W[e + "gate_up_proj"].double(), W[e + "down_proj"].double()
    return gate_up, W[e + "gate_up_proj_bias"].double(), down, W[e + "down_proj_bias"].double()


def clamped_swiglu(gate_up, limit, stats, clamp=True):
    """Even columns gate, odd columns up; gate <= limit, up in [-limit, limit];
    out = gate * sigmoid(1.702 gate) * (up + 1)."""
    gate, up = gate_up[..., ::2], gate_up[..., 1::2]
    if stats is not None:
        stats["gate_over"] += int((gate > limit).sum())
        stats["up_over"] += int((up > limit).sum())
        stats["up_under"] += int((up < -limit).sum())
        stats["gate_margin"] = min(stats["gate_margin"], float((gate - limit).abs().min()))
        stats["up_margin"] = min(stats["up_margin"], float((up.abs() - limit).abs().min()))
    if clamp:
        gate = gate.clamp(max=limit)
        up = up.clamp(min=-limit, max=limit)
    return gate * torch.sigmoid(1.702 * gate) * (up + 1)


def route(h, W, p, top_k, stats):
    """Router logits (with bias) -> top-k experts and the softmax over the k
    selected logits."""
    logits = h @ W[p + "mlp.router.weight"].T + W[p + "mlp.router.bias"]
    top, chosen = torch.topk(logits, top_k, dim=-1)
    if stats is not None:
        ordered = torch.sort(logits, dim=-1, descending=True).values
        stats["router_margin"] = min(stats["router_margin"], float((ordered[:, top_k - 1] - ordered[:, top_k]).min()))
    return torch.softmax(top, dim=-1), chosen


def gpt_oss_moe(h, W, p, cfg, stats, clamp=True):
    """Routed experts, one expert at a time over the tokens it was chosen for."""
    limit = cfg["swiglu_limit"]
    weights, chosen = route(h, W, p, cfg["num_experts_per_tok"], stats)
    gate_up, gate_up_bias, down, down_bias = expert_matrices(W, p + "mlp.experts.")
    out = torch.zeros_like(h)
    for e in range(gate_up.shape[0]):
        rows, slot = torch.nonzero(chosen == e, as_tuple=True)
        if rows.numel() == 0:
            continue
        act = clamped_swiglu(h[rows] @ gate_up[e] + gate_up_bias[e], limit, stats, clamp)
        y = act @ down[e] + down_bias[e]
        out.index_add_(0, rows, y * weights[rows, slot][:, None])
    return out


def gpt_oss_moe_dense(h, W, p, cfg):
    """Second formulation: every expert on every token, weighted by a dense
    [tokens, experts] routing matrix that is zero off the chosen experts."""
    weights, chosen = route(h, W, p, cfg["num_experts_per_tok"], None)
    dense = torch.zeros(h.shape[0], cfg["num_local_experts"], dtype=h.dtype).scatter_(1, chosen, weights)
    gate_up, gate_up_bias, down, down_bias = expert_matrices(W, p + "mlp.experts.")
    act = clamped_swiglu(torch.einsum("td,edf->etf", h, gate_up) + gate_up_bias[:, None, :], cfg["swiglu_limit"], None)
    y = torch.einsum("etf,efd->etd", act, down) + down_bias[:, None, :]
    return (y * dense.T[:, :, None]).sum(0)


def gpt_oss_forward(cfg, W, ids, stats=None, variant=None):
    """Logits [seq, vocab]. `variant` switches one feature off or picks a second
    formulation: no_sinks, no_window, no_yarn, truncated_yarn, no_attn_factor,
    no_clamp, sinks_by_lse, rope_by_halves, dense_moe."""
    variant = variant or ""
    W = {k: (v if v.dtype == torch.uint8 else v.double()) for k, v in W.items()}
    eps = cfg["rms_norm_eps"]
    n_heads, n_kv, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    positions = torch.arange(len(ids), dtype=torch.float64)
    inv, attn_factor = yarn_frequencies(hd, float(cfg["rope_theta"]), cfg["rope_scaling"],
                                        cfg["max_position_embeddings"],
                                        truncate=True if variant == "truncated_yarn" else None)
    if variant == "no_yarn":
        inv, attn_factor = 1.0 / float(cfg["rope_theta"]) ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd), 1.0
    if variant == "no_attn_factor":
        attn_factor = 1.0
    rope = rope_by_halves if variant == "rope_by_halves" else rope_rotate_half
    x = W["model.embed_tokens.weight"][torch.tensor(ids)]
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        a = p + "self_attn."
        h = rms_norm(x, W[p + "input_layernorm.weight"], eps)
        q = split_heads(h @ W[a + "q_proj.weight"].T + W[a + "q_proj.bias"], n_heads, hd)
        k = split_heads(h @ W[a + "k_proj.weight"].T + W[a + "k_proj.bias"], n_kv, hd)
        v = split_heads(h @ W[a + "v_proj.weight"].T + W[a + "v_proj.bias"], n_kv, hd)
        q, k = rope(q, positions, inv, attn_factor), rope(k, positions, inv, attn_factor)
        sliding = cfg["layer_types"][layer] == "sliding_attention" and variant != "no_window"
        window = cfg["sliding_window"] if sliding else 0
        scale = 1.0 / math.sqrt(hd)
        if variant == "sinks_by_lse":
            ctx = attend_sinks_by_lse(q, k, v, scale, window, W[a + "sinks"])
        else:
            ctx = attend(q, k, v, scale, window, sinks=None if variant == "no_sinks" else W[a + "sinks"])
        x = x + merge_heads(ctx) @ W[a + "o_proj.weight"].T + W[a + "o_proj.bias"]
        h = rms_norm(x, W[p + "post_attention_layernorm.weight"], eps)
        if variant == "dense_moe":
            x = x + gpt_oss_moe_dense(h, W, p, cfg)
        else:
            x = x + gpt_oss_moe(h, W, p, cfg, stats, clamp=variant != "no_clamp")
    x = rms_norm(x, W["model.norm.weight"], eps)
    return x @ W["lm_head.weight"].T


def new_gpt_oss_stats():
    return {"gate_over": 0, "up_over": 0, "up_under": 0, "gate_margin": math.inf, "up_margin": math.inf,
            "router_margin": math.inf}


def gpt_oss_draw_ok(stats):
    """Routing and clamps are decided far enough from their thresholds that
    float32 rounding in the runtime cannot flip them, and each clamp is hit."""
    return (stats["router_margin"] > 1e-3 and stats["gate_margin"] > 1e-4 and stats["up_margin"] > 1e-4
            and stats["gate_over"] > 0 and stats["up_over"] > 0 and stats["up_under"] > 0)


def check_mxfp4_decoding(name, W, gen):
    for stem in ("model.layers.0.mlp.experts.gate_up_proj", "model.layers.1.mlp.experts.down_proj"):
        blocks, scales = W[stem + "_blocks"], W[stem + "_scales"]
        values = mxfp4_dequantize(blocks, scales)
        for _ in range(200):
            e, row, k = (int(torch.randint(0, n, (1,), generator=gen)) for n in values.shape)
            if values[e, row, k] != mxfp4_element(blocks, scales, e, row, k):
                raise RuntimeError(f"{name}: {stem} element {(e, row, k)} decodes two ways")


def check_gpt_oss(name, cfg, W, ids, logits):
    """Features live, second formulations agree."""
    window = cfg["sliding_window"]
    check_mxfp4_decoding(name, W, torch.Generator().manual_seed(7))
    for variant in ("sinks_by_lse", "rope_by_halves", "dense_moe"):
        require_same(name, f"reference and {variant}", gpt_oss_forward(cfg, W, ids, variant=variant), logits)
    require_window_rows(name, window, logits, gpt_oss_forward(cfg, W, ids, variant="no_window"))
    for variant, what in (("no_sinks", "the sink logits"), ("no_yarn", "YaRN scaling"),
                          ("truncated_yarn", "truncate=false"), ("no_attn_factor", "the YaRN attention factor"),
                          ("no_clamp", "the SwiGLU clamps")):
        require_live(name, what, logits, gpt_oss_forward(cfg, W, ids, variant=variant))


def build_gpt_oss(out_dir, seed, seq):
    cfg = gpt_oss_config()
    for attempt in range(40):
        gen = torch.Generator().manual_seed(seed * 1000 + attempt)
        W = gpt_oss_weights(cfg, gen)
        ids = torch.randint(0, cfg["vocab_size"], (seq,), generator=gen).tolist()
        stats = new_gpt_oss_stats()
        with torch.no_grad():
            logits = gpt_oss_forward(cfg, W, ids, stats)
        if gpt_oss_draw_ok(stats):
            break
    else:
        raise RuntimeError("gpt_oss: no draw hit every clamp with clear router and clamp margins")
    with torch.no_grad():
        check_gpt_oss("gpt_oss", cfg, W, ids, logits)
        float_W = float_expert_layout(W)
        float_cfg = {k: v for k, v in cfg.items() if k != "quantization_config"}
        float_logits = gpt_oss_forward(float_cfg, float_W, ids)
    require_same("gpt_oss_float", "float and MXFP4 expert layouts", float_logits, logits, tol=1e-12)
    write_folder(out_dir, "gpt_oss", cfg, W, ids, logits)
    write_folder(out_dir, "gpt_oss_float", float_cfg, float_W, ids, float_logits)
    return ["gpt_oss", "gpt_oss_float"]


# ------------------------------------------------------------------ Gemma ----


def gemma_layer_types(cfg):
    """layer_types when the config lists them; otherwise the Hugging Face rule:
    Gemma 2 slides on even layers, Gemma 3 on every layer except each
    sliding_window_pattern-th ((i + 1) % pattern == 0 is global)."""
    n = cfg["num_hidden_layers"]
    if cfg.get("layer_types"):
        return list(cfg["layer_types"])
    if cfg["model_type"] == "gemma2":
        return ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(n)]
    pattern = cfg.get("sliding_window_pattern", 6)
    return ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(n)]


def gemma_inv_freq(cfg, layer_type, variant):
    """Gemma 2: rope_theta everywhere. Gemma 3: local layers rope_local_base_freq
    without scaling; global layers rope_theta with rope_scaling (linear: freq / factor)."""
    hd = cfg["head_dim"]
    exponents = torch.arange(0, hd, 2, dtype=torch.float64) / hd
    if cfg["model_type"] == "gemma3_text" and layer_type == "sliding_attention" and variant != "global_rope_everywhere":
        return 1.0 / float(cfg["rope_local_base_freq"]) ** exponents
    inv = 1.0 / float(cfg["rope_theta"]) ** exponents
    scaling = cfg.get("rope_scaling")
    if scaling and variant != "no_rope_scaling":
        if scaling["rope_type"] != "linear":
            raise ValueError(f"rope scaling {scaling['rope_type']} not modelled for Gemma")
        inv = inv / float(scaling["factor"])
    return inv


def gemma_forward(cfg, W, ids, variant=None):
    """Logits [seq, vocab] of Gemma 2 / Gemma 3 text. `variant` switches one
    feature off: no_window, no_attn_softcap, no_final_softcap, head_dim_scale,
    no_embed_scale, plain_norm_weight, no_qk_norm, global_rope_everywhere,
    no_rope_scaling; torch_gelu computes GELU with PyTorch's own tanh GELU."""
    variant = variant or ""
    W = {k: v.double() for k, v in W.items()}
    eps = cfg["rms_norm_eps"]
    n_heads, n_kv, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    one_plus = variant != "plain_norm_weight"
    positions = torch.arange(len(ids), dtype=torch.float64)
    embed = W["model.embed_tokens.weight"]
    # Hugging Face casts the normaliser to the weight dtype (float32 here).
    normaliser = float(torch.tensor(cfg["hidden_size"] ** 0.5, dtype=torch.float32))
    x = embed[torch.tensor(ids)] * (1.0 if variant == "no_embed_scale" else normaliser)
    scale = (hd if variant == "head_dim_scale" else cfg["query_pre_attn_scalar"]) ** -0.5
    attn_cap = None if variant == "no_attn_softcap" else cfg.get("attn_logit_softcapping")
    final_cap = None if variant == "no_final_softcap" else cfg.get("final_logit_softcapping")
    act = (lambda t: torch.nn.functional.gelu(t, approximate="tanh")) if variant == "torch_gelu" else gelu_tanh
    for layer, layer_type in enumerate(gemma_layer_types(cfg)):
        p = f"model.layers.{layer}."
        a = p + "self_attn."
        h = rms_norm(x, W[p + "input_layernorm.weight"], eps, one_plus)
        q = split_heads(h @ W[a + "q_proj.weight"].T, n_heads, hd)
        k = split_heads(h @ W[a + "k_proj.weight"].T, n_kv, hd)
        v = split_heads(h @ W[a + "v_proj.weight"].T, n_kv, hd)
        if a + "q_norm.weight" in W and variant != "no_qk_norm":
            q = rms_norm(q, W[a + "q_norm.weight"], eps, one_plus)
            k = rms_norm(k, W[a + "k_norm.weight"], eps, one_plus)
        inv = gemma_inv_freq(cfg, layer_type, variant)
        q, k = rope_rotate_half(q, positions, inv), rope_rotate_half(k, positions, inv)
        window = cfg["sliding_window"] if layer_type == "sliding_attention" and variant != "no_window" else 0
        ctx = attend(q, k, v, scale, window, softcap=attn_cap)
        attn_out = merge_heads(ctx) @ W[a + "o_proj.weight"].T
        x = x + rms_norm(attn_out, W[p + "post_attention_layernorm.weight"], eps, one_plus)
        h = rms_norm(x, W[p + "pre_feedforward_layernorm.weight"], eps, one_plus)
        m = p + "mlp."
        ffn = (act(h @ W[m + "gate_proj.weight"].T) * (h @ W[m + "up_proj.weight"].T)) @ W[m + "down_proj.weight"].T
        x = x + rms_norm(ffn, W[p + "post_feedforward_layernorm.weight"], eps, one_plus)
    x = rms_norm(x, W["model.norm.weight"], eps, one_plus)
    logits = x @ (W["lm_head.weight"] if "lm_head.weight" in W else embed).T
    return soft_cap(logits, final_cap) if final_cap else logits


def gemma2_config():
    return {
        "architectures": ["Gemma2ForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        # Small caps so that both soft-caps bend the tiny model's logits.
        "attn_logit_softcapping": 5.0,
        "bos_token_id": 2,
        "cache_implementation": "hybrid",
        "eos_token_id": 1,
        "final_logit_softcapping": 15.0,
        "head_dim": 16,
        "hidden_act": "gelu_pytorch_tanh",
        "hidden_activation": "gelu_pytorch_tanh",
        "hidden_size": 48,
        "initializer_range": 0.02,
        "intermediate_size": 96,
        "max_position_embeddings": 128,
        "model_type": "gemma2",
        "num_attention_heads": 4,
        "num_hidden_layers": 4,
        "num_key_value_heads": 2,
        "pad_token_id": 0,
        "query_pre_attn_scalar": 24,
        "rms_norm_eps": 1e-06,
        "rope_theta": 10000.0,
        "sliding_window": 6,
        "torch_dtype": "float32",
        "transformers_version": "4.42.4",
        "use_cache": True,
        "vocab_size": 97,
    }


def gemma3_config():
    layers, pattern = 4, 3
    return {
        "architectures": ["Gemma3ForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "attn_logit_softcapping": None,
        "bos_token_id": 2,
        "cache_implementation": "hybrid",
        "eos_token_id": [1, 96],
        "final_logit_softcapping": None,
        "head_dim": 16,
        "hidden_activation": "gelu_pytorch_tanh",
        "hidden_size": 48,
        "initializer_range": 0.02,
        "intermediate_size": 96,
        "layer_types": ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(layers)],
        "max_position_embeddings": 128,
        "model_type": "gemma3_text",
        "num_attention_heads": 4,
        "num_hidden_layers": layers,
        "num_key_value_heads": 1,
        "pad_token_id": 0,
        "query_pre_attn_scalar": 24,
        "rms_norm_eps": 1e-06,
        "rope_local_base_freq": 10000.0,
        "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
        "rope_theta": 1000000.0,
        "sliding_window": 6,
        "sliding_window_pattern": pattern,
        "torch_dtype": "float32",
        "transformers_version": "4.50.0.dev0",
        "use_cache": True,
        "vocab_size": 97,
    }


def gemma_weights(cfg, gen):
    """Random weights under the released names; embeddings tied (no lm_head) and
    small, as Gemma's are before the sqrt(hidden) scale; RMSNorm weights near 0
    because the norm scales by (1 + w)."""
    d, f = cfg["hidden_size"], cfg["intermediate_size"]
    n_heads, n_kv, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]

    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    def mat(rows, cols, gain=1.0):
        return (gain * randn(rows, cols) / math.sqrt(cols)).float()

    def norm(n):
        return (0.3 * randn(n)).float()

    W = {"model.embed_tokens.weight": (0.3 * randn(cfg["vocab_size"], d)).float()}
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        a = p + "self_attn."
        for n in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                  "post_feedforward_layernorm"):
            W[p + n + ".weight"] = norm(d)
        W[a + "q_proj.weight"] = mat(n_heads * hd, d, 2.0)
        W[a + "k_proj.weight"] = mat(n_kv * hd, d, 2.0)
        W[a + "v_proj.weight"] = mat(n_kv * hd, d)
        W[a + "o_proj.weight"] = mat(d, n_heads * hd)
        if cfg["model_type"] == "gemma3_text":
            W[a + "q_norm.weight"] = norm(hd)
            W[a + "k_norm.weight"] = norm(hd)
        W[p + "mlp.gate_proj.weight"] = mat(f, d)
        W[p + "mlp.up_proj.weight"] = mat(f, d)
        W[p + "mlp.down_proj.weight"] = mat(d, f)
    W["model.norm.weight"] = norm(d)
    return W


GEMMA_LIVE = {
    "gemma2": (("no_attn_softcap", "the attention logit soft-cap"), ("no_final_softcap", "the final logit soft-cap"),
               ("head_dim_scale", "query_pre_attn_scalar"), ("no_embed_scale", "the embedding scale"),
               ("plain_norm_weight", "the (1 + w) norm weights")),
    "gemma3_text": (("no_qk_norm", "the q/k norms"), ("global_rope_everywhere", "rope_local_base_freq"),
                    ("no_rope_scaling", "the linear RoPE scaling"), ("head_dim_scale", "query_pre_attn_scalar"),
                    ("no_embed_scale", "the embedding scale"), ("plain_norm_weight", "the (1 + w) norm weights")),
}


def build_gemma(out_dir, name, cfg, seed, seq):
    gen = torch.Generator().manual_seed(seed)
    W = gemma_weights(cfg, gen)
    ids = torch.randint(0, cfg["vocab_size"], (seq,), generator=gen).tolist()
    with torch.no_grad():
        logits = gemma_forward(cfg, W, ids)
        require_same(name, "the GELU formula and torch's tanh GELU", gemma_forward(cfg, W, ids, "torch_gelu"), logits)
        types = gemma_layer_types(cfg)
        if "sliding_attention" not in types or "full_attention" not in types:
            raise RuntimeError(f"{name}: needs both local and global layers, got {types}")
        require_window_rows(name, cfg["sliding_window"], logits, gemma_forward(cfg, W, ids, "no_window"))
        for variant, what in GEMMA_LIVE[cfg["model_type"]]:
            require_live(name, what, logits, gemma_forward(cfg, W, ids, variant))
    write_folder(out_dir, name, cfg, W, ids, logits)
    return [name]


# ------------------------------------------------------------------ entry ----


def build_all(out_dir, torch_module, seq):
    """Writes every folder of this file into out_dir; returns their names."""
    global torch
    torch = torch_module
    if seq <= 6:
        raise ValueError("the sequence must reach past the sliding windows (6)")
    names = build_gpt_oss(out_dir, 101, seq)
    names += build_gemma(out_dir, "gemma2", gemma2_config(), 102, seq)
    names += build_gemma(out_dir, "gemma3", gemma3_config(), 103, seq)
    return names
