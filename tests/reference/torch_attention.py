"""An independent float64 PyTorch implementation of the attention in
include/sinklab/attention.h, written from the formulas (not from the C++):
materialised logits, masks from explicit positions, RoPE in both
conventions, GOAT kappa, key bias u, ALiBi, softcap, GQA by repeat_interleave,
and the sink logit as an extra logit column dropped after the softmax.
Gradients come from torch.autograd."""
import math

import torch

F64 = torch.float64


# ----------------------------------------------------------------- RoPE ----
def rope_frequencies(head_dim, rope):
    """Inverse frequencies (rotary_dim/2) and the cos/sin multiplier."""
    rd = rope.get("rotary_dim", 0) or head_dim
    theta = float(rope.get("theta", 10000.0))
    scaling = rope.get("scaling", "none")
    factor = float(rope.get("factor", 1.0))
    base = theta
    if scaling == "ntk" and factor != 1.0 and rd > 2:
        base = theta * factor ** (rd / (rd - 2))
    idx = torch.arange(0, rd, 2, dtype=F64)
    inv_freq = base ** (-idx / rd)
    mscale = 1.0
    if scaling == "linear":
        inv_freq = inv_freq / factor
    elif scaling == "yarn":
        orig = rope["original_context"]
        beta_fast = float(rope.get("beta_fast", 32.0))
        beta_slow = float(rope.get("beta_slow", 1.0))

        def correction_dim(rotations):
            return rd * math.log(orig / (rotations * 2 * math.pi)) / (2 * math.log(theta))

        low = max(math.floor(correction_dim(beta_fast)), 0)
        high = min(math.ceil(correction_dim(beta_slow)), rd - 1)
        if low == high:
            high += 0.001
        ramp = ((torch.arange(rd // 2, dtype=F64) - low) / (high - low)).clamp(0, 1)
        extrapolation_weight = 1 - ramp
        inv_freq = (inv_freq / factor) * (1 - extrapolation_weight) + inv_freq * extrapolation_weight
        attn_factor = float(rope.get("attn_factor", 0.0))
        mscale = attn_factor if attn_factor > 0 else (0.1 * math.log(factor) + 1 if factor > 1 else 1.0)
    elif scaling == "llama3":
        orig = rope["original_context"]
        low_ff = float(rope.get("low_freq_factor", 1.0))
        high_ff = float(rope.get("high_freq_factor", 4.0))
        low_wavelen, high_wavelen = orig / low_ff, orig / high_ff
        wavelen = 2 * math.pi / inv_freq
        scaled = torch.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
        smooth = (orig / wavelen - low_ff) / (high_ff - low_ff)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen <= low_wavelen) & (wavelen >= high_wavelen)
        inv_freq = torch.where(medium, smoothed, scaled)
    return inv_freq, mscale


def apply_rope(x, pos, rope):
    """x [B, H, n, D] float64, pos [B, n] (int). Returns the rotated x."""
    head_dim = x.shape[-1]
    inv_freq, mscale = rope_frequencies(head_dim, rope)
    rd = 2 * inv_freq.shape[0]
    angles = pos.to(F64)[:, None, :, None] * inv_freq  # [B, 1, n, rd/2]
    rot, rest = x[..., :rd], x[..., rd:]
    if rope["style"] == "rotate_half":
        # Hugging Face: x * cos + rotate_half(x) * sin with duplicated angles.
        emb = torch.cat([angles, angles], dim=-1)
        cos, sin = emb.cos() * mscale, emb.sin() * mscale
        x1, x2 = rot[..., : rd // 2], rot[..., rd // 2:]
        rotated = rot * cos + torch.cat([-x2, x1], dim=-1) * sin
    elif rope["style"] == "interleaved":
        # Pairs (x[2i], x[2i+1]) as complex numbers times e^{i angle}.
        pairs = torch.view_as_complex(rot.reshape(*rot.shape[:-1], rd // 2, 2).contiguous())
        turned = pairs * torch.polar(torch.full_like(angles, mscale), angles)
        rotated = torch.view_as_real(turned).reshape(rot.shape)
    else:
        raise ValueError(rope["style"])
    return torch.cat([rotated, rest], dim=-1)


# -------------------------------------------------------------- helpers ----
def default_positions(batch, n_q, n_k):
    q_pos = torch.arange(n_q, dtype=torch.int64) + (n_k - n_q)
    k_pos = torch.arange(n_k, dtype=torch.int64)
    return q_pos.expand(batch, n_q), k_pos.expand(batch, n_k)


def as_batched_positions(p, batch, n, default):
    if p is None:
        return default
    p = torch.as_tensor(p, dtype=torch.int64)
    if p.dim() == 1:
        p = p[None]
    return p.expand(batch, n)


def goat_omegas(rank, base):
    if rank == 1:
        return torch.ones(1, dtype=F64)
    return torch.tensor([base ** (-r / (rank - 1)) for r in range(rank)], dtype=F64)


# ------------------------------------------------------------ attention ----
def attention(q, k, v, *, causal=True, window=0, sink_keys=0, sink_logits=None,
              goat_lambda_sym=None, goat_lambda_asym=None, goat_base=1e4, key_bias=None,
              alibi_slopes=None, positions=None, rope=None, softcap=0.0, scale=None,
              first_k=1):
    """All tensors float64 (any of them may require grad). Returns a dict with
    o, lse, prob (without the sink column), mass_first_k, entropy, column_sums."""
    batch, n_heads, n_q, head_dim = q.shape
    n_kv = k.shape[1]
    n_k = k.shape[2]
    group = n_heads // n_kv
    dq_pos, dk_pos = default_positions(batch, n_q, n_k)
    q_pos = as_batched_positions(positions[0] if positions else None, batch, n_q, dq_pos)
    k_pos = as_batched_positions(positions[1] if positions else None, batch, n_k, dk_pos)

    if rope is not None:
        q = apply_rope(q, q_pos, rope)
        k = apply_rope(k, k_pos, rope)
    k_h = k.repeat_interleave(group, dim=1)
    v_h = v.repeat_interleave(group, dim=1)
    scale = 1.0 / math.sqrt(head_dim) if scale is None else scale

    s = scale * torch.einsum("bhid,bhjd->bhij", q, k_h)
    if softcap > 0:
        s = softcap * torch.tanh(s / softcap)
    delta = (q_pos[:, :, None] - k_pos[:, None, :]).to(F64)  # [B, n_q, n_k]
    z = s
    if goat_lambda_sym is not None or goat_lambda_asym is not None:
        ref = goat_lambda_sym if goat_lambda_sym is not None else goat_lambda_asym
        rank = ref.shape[1]
        zeros = torch.zeros_like(ref)
        lam_s = goat_lambda_sym if goat_lambda_sym is not None else zeros
        lam_a = goat_lambda_asym if goat_lambda_asym is not None else zeros
        w = goat_omegas(rank, goat_base)
        angle = delta[..., None] * w  # [B, n_q, n_k, R]
        kappa = (torch.einsum("gr,bijr->bgij", lam_s, angle.cos()) +
                 torch.einsum("gr,bijr->bgij", lam_a, angle.sin()))
        z = z + kappa.repeat_interleave(group, dim=1)
    if key_bias is not None:
        z = z + key_bias.repeat_interleave(group, dim=1)[:, :, None, :]
    if alibi_slopes is not None:
        z = z - alibi_slopes[None, :, None, None] * delta.abs()[:, None]

    visible = torch.ones(batch, n_q, n_k, dtype=torch.bool)
    if causal:
        visible &= k_pos[:, None, :] <= q_pos[:, :, None]
    if window > 0:
        in_window = (q_pos[:, :, None] - k_pos[:, None, :]).abs() < window
        exempt = (torch.arange(n_k) < sink_keys)[None, None, :]
        visible &= in_window | exempt
    z = z.masked_fill(~visible[:, None], float("-inf"))

    if sink_logits is not None:
        sink_col = sink_logits[None, :, None, None].expand(batch, n_heads, n_q, 1)
        z_all = torch.cat([z, sink_col], dim=-1)
    else:
        z_all = z
    # Softmax that yields p = 0 and lse = -inf for a row with nothing visible.
    m = z_all.amax(dim=-1, keepdim=True).detach()
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    e = torch.exp(z_all - m)
    total = e.sum(dim=-1, keepdim=True)
    nonempty = total > 0
    safe_total = torch.where(nonempty, total, torch.ones_like(total))
    p_all = e / safe_total
    lse = torch.where(nonempty, m + torch.log(safe_total), torch.full_like(total, float("-inf")))[..., 0]
    p = p_all[..., :n_k]
    o = torch.einsum("bhij,bhjd->bhid", p, v_h)
    entropy = -torch.special.xlogy(p_all, p_all).sum(-1)
    return {
        "o": o,
        "lse": lse,
        "prob": p,
        "mass_first_k": p[..., :first_k].sum(-1),
        "entropy": entropy,
        "column_sums": p.sum(-2),
    }
