#!/usr/bin/env python3
"""Tiny random decoder models with golden logits, one folder per architecture.

Each folder holds a Hugging Face style checkpoint (model.safetensors +
config.json), ids.txt (a random token sequence) and logits.f32 (the logits of
every position, [seq, vocab] little-endian float32). The forward below follows
the Hugging Face definitions of these models (Llama, Mistral, Qwen2, Qwen3,
Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE) and gpt-oss style learned sink logits; it
runs in float64 on float32 weights and shares no code with the C++ runtime.
tiny_sink_models.py adds gpt-oss (MXFP4 and float experts), Gemma 2 and Gemma 3.

Usage: make_tiny_models.py OUT_DIR
Exits with status 77 and a message when PyTorch is missing.
"""

import math
import os
import shutil
import sys

import tiny_sink_models  # gpt-oss, Gemma 2, Gemma 3 (same folder)
from tiny_model_files import write_folder

torch = None  # imported by main(), which reports a missing PyTorch

VOCAB = 97
SEQ = 24

# ------------------------------------------------------------ reference ----


def rms_norm(x, weight, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return x * torch.rsqrt(var + eps) * weight


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def inv_frequencies(cfg, rot_dim):
    base = float(cfg.get("rope_theta", 10000.0))
    inv = 1.0 / (base ** (torch.arange(0, rot_dim, 2, dtype=torch.float64) / rot_dim))
    scaling = cfg.get("rope_scaling")
    if not scaling:
        return inv
    kind = scaling.get("rope_type", scaling.get("type"))
    factor = float(scaling["factor"])
    if kind == "linear":
        return inv / factor  # positions divided by the factor
    if kind == "llama3":
        old_ctx = float(scaling["original_max_position_embeddings"])
        low = float(scaling["low_freq_factor"])
        high = float(scaling["high_freq_factor"])
        low_wavelen = old_ctx / low
        high_wavelen = old_ctx / high
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > low_wavelen, inv / factor, inv)
        smooth = (old_ctx / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
        return torch.where(medium, smoothed, scaled)
    raise ValueError(f"rope scaling {kind} not modelled")


def apply_rope(x, positions, inv):
    """x: [heads, seq, head_dim]; Hugging Face rotate-half over the full head."""
    freqs = positions[:, None] * inv[None, :]
    emb = torch.cat([freqs, freqs], dim=-1)
    return x * emb.cos() + rotate_half(x) * emb.sin()


def attention(q, k, v, window, sinks):
    """q [H, S, d], k/v [Hkv, S, d]; causal, optional sliding window (query i sees
    keys i-W+1..i) and per-head sink logits entering only the denominator."""
    n_heads, seq, head_dim = q.shape
    rep = n_heads // k.shape[0]
    k = k.repeat_interleave(rep, dim=0)
    v = v.repeat_interleave(rep, dim=0)
    scores = q @ k.transpose(-1, -2) / math.sqrt(head_dim)
    i = torch.arange(seq)[:, None]
    j = torch.arange(seq)[None, :]
    visible = j <= i
    if window:
        visible = visible & (j > i - window)
    scores = scores.masked_fill(~visible, float("-inf"))
    if sinks is not None:
        column = sinks.reshape(n_heads, 1, 1).expand(n_heads, seq, 1)
        combined = torch.cat([scores, column], dim=-1)
        combined = combined - combined.max(dim=-1, keepdim=True).values
        probs = torch.softmax(combined, dim=-1)[..., :-1]
    else:
        probs = torch.softmax(scores, dim=-1)
    return probs @ v


def swiglu_mlp(x, gate, up, down):
    return (torch.nn.functional.silu(x @ gate.T) * (x @ up.T)) @ down.T


def layer_window(cfg, layer):
    mt = cfg["model_type"]
    if mt in ("mistral", "mixtral"):
        return cfg.get("sliding_window") or 0
    if mt == "sinklab" and "layer_types" in cfg:
        return cfg["sliding_window"] if cfg["layer_types"][layer] == "sliding_attention" else 0
    return 0


def moe_names(cfg, p):
    """(router, [(gate, up, down)] per expert) Hugging Face names."""
    if cfg["model_type"] == "mixtral":
        router = p + "block_sparse_moe.gate.weight"
        experts = [tuple(f"{p}block_sparse_moe.experts.{e}.{w}.weight" for w in ("w1", "w3", "w2"))
                   for e in range(cfg["num_local_experts"])]
    else:
        router = p + "mlp.gate.weight"
        experts = [tuple(f"{p}mlp.experts.{e}.{w}_proj.weight" for w in ("gate", "up", "down"))
                   for e in range(cfg["num_experts"])]
    return router, experts


def moe_block(cfg, W, p, h, margins):
    router, experts = moe_names(cfg, p)
    mt = cfg["model_type"]
    top_k = cfg["num_experts_per_tok"]
    probs = torch.softmax(h @ W[router].T, dim=-1)
    weights, chosen = torch.topk(probs, top_k, dim=-1)
    ordered = torch.sort(probs, dim=-1, descending=True).values
    margins.append(float((ordered[:, top_k - 1] - ordered[:, top_k]).min()))
    renorm = True if mt == "mixtral" else cfg.get("norm_topk_prob", False)
    if renorm:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    out = torch.zeros_like(h)
    for e, (g, u, d) in enumerate(experts):
        rows, slot = torch.nonzero(chosen == e, as_tuple=True)
        if rows.numel() == 0:
            continue
        y = swiglu_mlp(h[rows], W[g], W[u], W[d])
        out.index_add_(0, rows, y * weights[rows, slot][:, None])
    if mt == "qwen2_moe" and cfg.get("shared_expert_intermediate_size", 0) > 0:
        s = p + "mlp.shared_expert."
        shared = swiglu_mlp(h, W[s + "gate_proj.weight"], W[s + "up_proj.weight"], W[s + "down_proj.weight"])
        out = out + torch.sigmoid(h @ W[p + "mlp.shared_expert_gate.weight"].T) * shared
    return out


def forward(cfg, W, ids):
    """Logits [seq, vocab] (float64) for the token ids."""
    W = {k: v.to(torch.float64) for k, v in W.items()}
    mt = cfg["model_type"]
    eps = cfg["rms_norm_eps"]
    n_heads = cfg["num_attention_heads"]
    n_kv = cfg["num_key_value_heads"]
    head_dim = cfg.get("head_dim", cfg["hidden_size"] // n_heads)
    seq = len(ids)
    positions = torch.arange(seq, dtype=torch.float64)
    inv = inv_frequencies(cfg, head_dim)
    per_head_qk_norm = mt in ("qwen3", "qwen3_moe") or (mt == "sinklab" and cfg.get("qk_norm", False))
    margins = []
    x = W["model.embed_tokens.weight"][torch.tensor(ids)]
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        a = p + "self_attn."
        h = rms_norm(x, W[p + "input_layernorm.weight"], eps)
        q = h @ W[a + "q_proj.weight"].T
        k = h @ W[a + "k_proj.weight"].T
        v = h @ W[a + "v_proj.weight"].T
        if a + "q_proj.bias" in W:
            q, k, v = q + W[a + "q_proj.bias"], k + W[a + "k_proj.bias"], v + W[a + "v_proj.bias"]
        if mt == "olmoe":  # RMSNorm over the whole projection
            q = rms_norm(q, W[a + "q_norm.weight"], eps)
            k = rms_norm(k, W[a + "k_norm.weight"], eps)
        q = q.reshape(seq, n_heads, head_dim).transpose(0, 1)
        k = k.reshape(seq, n_kv, head_dim).transpose(0, 1)
        v = v.reshape(seq, n_kv, head_dim).transpose(0, 1)
        if per_head_qk_norm:
            q = rms_norm(q, W[a + "q_norm.weight"], eps)
            k = rms_norm(k, W[a + "k_norm.weight"], eps)
        q = apply_rope(q, positions, inv)
        k = apply_rope(k, positions, inv)
        sinks = W.get(a + "sinks") if cfg.get("attention_sinks", False) else None
        ctx = attention(q, k, v, layer_window(cfg, layer), sinks)
        ctx = ctx.transpose(0, 1).reshape(seq, n_heads * head_dim)
        x = x + ctx @ W[a + "o_proj.weight"].T
        h = rms_norm(x, W[p + "post_attention_layernorm.weight"], eps)
        if mt in ("mixtral", "qwen2_moe", "qwen3_moe", "olmoe"):
            x = x + moe_block(cfg, W, p, h, margins)
        else:
            x = x + swiglu_mlp(h, W[p + "mlp.gate_proj.weight"], W[p + "mlp.up_proj.weight"],
                               W[p + "mlp.down_proj.weight"])
    x = rms_norm(x, W["model.norm.weight"], eps)
    head = W["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else W["lm_head.weight"]
    return x @ head.T, margins


# ---------------------------------------------------------------- models ----


def base_config(model_type, **extra):
    cfg = {
        "model_type": model_type,
        "vocab_size": VOCAB,
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "max_position_embeddings": 128,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "hidden_act": "silu",
        "tie_word_embeddings": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "torch_dtype": "float32",
    }
    cfg.update(extra)
    return cfg


def model_configs():
    moe_common = {"num_experts": 4, "num_experts_per_tok": 2, "decoder_sparse_step": 1, "mlp_only_layers": []}
    return {
        "llama": base_config("llama", num_hidden_layers=3, attention_bias=False,
                             architectures=["LlamaForCausalLM"]),
        "llama_tied": base_config("llama", tie_word_embeddings=True, rms_norm_eps=1e-6,
                                  num_key_value_heads=4, architectures=["LlamaForCausalLM"]),
        "llama_rope_llama3": base_config("llama", rope_theta=500000.0, architectures=["LlamaForCausalLM"],
                                         rope_scaling={"rope_type": "llama3", "factor": 8.0,
                                                       "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                       "original_max_position_embeddings": 64}),
        "llama_rope_linear": base_config("llama", rope_scaling={"type": "linear", "factor": 2.0},
                                         architectures=["LlamaForCausalLM"]),
        "mistral": base_config("mistral", sliding_window=7, architectures=["MistralForCausalLM"]),
        "qwen2": base_config("qwen2", tie_word_embeddings=True, use_sliding_window=False, sliding_window=32,
                             max_window_layers=2, rope_theta=1000000.0, architectures=["Qwen2ForCausalLM"]),
        "qwen3": base_config("qwen3", attention_bias=False, rms_norm_eps=1e-6, num_hidden_layers=3,
                             architectures=["Qwen3ForCausalLM"]),
        "mixtral": base_config("mixtral", num_local_experts=4, num_experts_per_tok=2, intermediate_size=64,
                               sliding_window=None, rope_theta=1000000.0, architectures=["MixtralForCausalLM"]),
        "qwen2_moe": base_config("qwen2_moe", intermediate_size=128, moe_intermediate_size=32,
                                 shared_expert_intermediate_size=64, norm_topk_prob=False,
                                 use_sliding_window=False, architectures=["Qwen2MoeForCausalLM"], **moe_common),
        "qwen3_moe": base_config("qwen3_moe", intermediate_size=128, moe_intermediate_size=32,
                                 norm_topk_prob=True, rms_norm_eps=1e-6, attention_bias=False,
                                 architectures=["Qwen3MoeForCausalLM"], **moe_common),
        "olmoe": base_config("olmoe", intermediate_size=32, norm_topk_prob=False, clip_qkv=None,
                             num_experts=4, num_experts_per_tok=2, architectures=["OlmoeForCausalLM"]),
        "sinklab": base_config("sinklab", num_hidden_layers=3, attention_sinks=True, sliding_window=6,
                               layer_types=["sliding_attention", "full_attention", "sliding_attention"]),
        "sinklab_qk_norm": base_config("sinklab", tie_word_embeddings=True, attention_sinks=True, qk_norm=True,
                                       sliding_window=5, layer_types=["full_attention", "sliding_attention"]),
    }


def make_weights(cfg, gen):
    """Random float32 weights under standard Hugging Face names."""
    d = cfg["hidden_size"]
    n_heads, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg["head_dim"]
    mt = cfg["model_type"]

    def mat(rows, cols):
        return torch.randn(rows, cols, generator=gen, dtype=torch.float64).float() / math.sqrt(cols)

    def norm(n):
        return (1.0 + 0.2 * torch.randn(n, generator=gen, dtype=torch.float64)).float()

    def vec(n, scale):
        return (scale * torch.randn(n, generator=gen, dtype=torch.float64)).float()

    W = {"model.embed_tokens.weight": torch.randn(cfg["vocab_size"], d, generator=gen, dtype=torch.float64).float()}
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        a = p + "self_attn."
        W[p + "input_layernorm.weight"] = norm(d)
        W[a + "q_proj.weight"] = mat(n_heads * hd, d)
        W[a + "k_proj.weight"] = mat(n_kv * hd, d)
        W[a + "v_proj.weight"] = mat(n_kv * hd, d)
        W[a + "o_proj.weight"] = mat(d, n_heads * hd)
        if mt in ("qwen2", "qwen2_moe"):
            W[a + "q_proj.bias"] = vec(n_heads * hd, 0.3)
            W[a + "k_proj.bias"] = vec(n_kv * hd, 0.3)
            W[a + "v_proj.bias"] = vec(n_kv * hd, 0.3)
        if mt in ("qwen3", "qwen3_moe") or (mt == "sinklab" and cfg.get("qk_norm")):
            W[a + "q_norm.weight"] = norm(hd)
            W[a + "k_norm.weight"] = norm(hd)
        if mt == "olmoe":
            W[a + "q_norm.weight"] = norm(n_heads * hd)
            W[a + "k_norm.weight"] = norm(n_kv * hd)
        if cfg.get("attention_sinks"):
            W[a + "sinks"] = vec(n_heads, 1.5)
        W[p + "post_attention_layernorm.weight"] = norm(d)
        if mt in ("mixtral", "qwen2_moe", "qwen3_moe", "olmoe"):
            router, experts = moe_names(cfg, p)
            n_exp = len(experts)
            f = cfg["moe_intermediate_size"] if mt in ("qwen2_moe", "qwen3_moe") else cfg["intermediate_size"]
            W[router] = 2.0 * mat(n_exp, d)
            for g, u, dn in experts:
                W[g], W[u], W[dn] = mat(f, d), mat(f, d), mat(d, f)
            if mt == "qwen2_moe":
                fs = cfg["shared_expert_intermediate_size"]
                s = p + "mlp.shared_expert."
                W[s + "gate_proj.weight"] = mat(fs, d)
                W[s + "up_proj.weight"] = mat(fs, d)
                W[s + "down_proj.weight"] = mat(d, fs)
                W[p + "mlp.shared_expert_gate.weight"] = mat(1, d)
        else:
            f = cfg["intermediate_size"]
            W[p + "mlp.gate_proj.weight"] = mat(f, d)
            W[p + "mlp.up_proj.weight"] = mat(f, d)
            W[p + "mlp.down_proj.weight"] = mat(d, f)
    W["model.norm.weight"] = norm(d)
    if not cfg["tie_word_embeddings"]:
        W["lm_head.weight"] = mat(cfg["vocab_size"], d)
    return W


def build(name, cfg, out_dir, seed):
    # Re-draw when a router's k-th and (k+1)-th probabilities are so close that
    # float32 rounding in the runtime could pick a different expert.
    for attempt in range(20):
        gen = torch.Generator().manual_seed(seed * 1000 + attempt)
        W = make_weights(cfg, gen)
        ids = torch.randint(0, cfg["vocab_size"], (SEQ,), generator=gen).tolist()
        with torch.no_grad():
            logits, margins = forward(cfg, W, ids)
        if not margins or min(margins) > 1e-3:
            break
    else:
        raise RuntimeError(f"{name}: could not draw a router with clear top-k margins")
    write_folder(out_dir, name, cfg, W, ids, logits)


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: make_tiny_models.py OUT_DIR\n")
        return 2
    out_dir = sys.argv[1]
    shutil.rmtree(out_dir, ignore_errors=True)
    global torch
    try:
        import torch as imported_torch
    except ImportError:
        sys.stderr.write("make_tiny_models.py: PyTorch (python3-torch) is not installed for "
                         f"{sys.executable}; the tiny reference models are not written and "
                         "their tests skip\n")
        return 77
    torch = imported_torch
    torch.set_num_threads(1)
    staging = out_dir + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    configs = model_configs()
    for seed, (name, cfg) in enumerate(configs.items(), start=1):
        build(name, cfg, staging, seed)
    names = list(configs) + tiny_sink_models.build_all(staging, torch, SEQ)
    os.rename(staging, out_dir)
    print(f"make_tiny_models.py: wrote {len(names)} models to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
