#!/usr/bin/env python3
"""Random GGUF blocks and their values, decoded here with numpy alone.

Usage: make_quant_blocks.py OUT_DIR

For each type (f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k, mxfp4) writes
OUT_DIR/<type>.bin (raw blocks: random bytes, with the scale fields set to
finite values of moderate size, some of them subnormal) and OUT_DIR/<type>.f32
(the decoded float32 values, little-endian), and OUT_DIR/index.txt with one
"<type> <blocks> <elements per block>" line per type.

The decoding follows the block layouts as ggml defines them, written here from
those definitions (bit fields unpacked with numpy, E2M1 values built from
their sign, exponent and mantissa bits), every product and difference rounded
to float32 in the order the layouts state. The C++ tests
(tests/unit/model/test_quant_reference.cpp) compare sinklab's decoder with
these values bit for bit. Exits with 77 when numpy is missing.
"""
import os
import sys

try:
    import numpy as np
except ImportError:
    print("make_quant_blocks.py: numpy is not installed (python3-numpy); skipping", file=sys.stderr)
    sys.exit(77)

F32 = np.float32
BLOCKS = 96  # small-block types get 8x as many


def scale_values(rng, n, smallest_exp=-8, largest_exp=2):
    """Finite float16 scales of either sign; about 5% subnormal."""
    mag = np.ldexp(1 + rng.random(n), rng.integers(smallest_exp, largest_exp, n))
    mag = np.where(rng.random(n) < 0.05, np.ldexp(1 + rng.random(n), -20), mag)
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return (sign * mag).astype(np.float16)


def put_f16(raw, offset, values):
    raw[:, offset:offset + 2] = values.astype("<f2").view(np.uint8).reshape(-1, 2)


def f16_field(raw, offset):
    return raw[:, offset:offset + 2].copy().view("<f2")[:, 0].astype(F32)


def nibbles_split(qs):
    """16 bytes -> 32 codes: low nibbles are elements 0..15, high nibbles 16..31."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=1)


def decode_q8_0(raw):
    d = f16_field(raw, 0)
    q = raw[:, 2:34].copy().view(np.int8).astype(F32)
    return d[:, None] * q


def decode_q4_0(raw):
    d = f16_field(raw, 0)
    q = (nibbles_split(raw[:, 2:18]).astype(np.int32) - 8).astype(F32)
    return d[:, None] * q


def e2m1(code):
    """The FP4 E2M1 value of a 4-bit code: sign bit 3, exponent bits 1..2 (bias 1), mantissa bit 0."""
    sign = np.where(code & 0x8, -1.0, 1.0)
    exp = (code >> 1) & 0x3
    man = code & 0x1
    mag = np.where(exp == 0, 0.5 * man, (1.0 + 0.5 * man) * np.ldexp(1.0, exp.astype(np.int32) - 1))
    return (sign * mag).astype(F32)


def decode_mxfp4(raw):
    e = raw[:, 0].astype(np.int32)
    # Code 8 is E2M1's -0; ggml's table (and sinklab) decode it as +0, hence the + 0.
    values = e2m1(nibbles_split(raw[:, 1:17])) + F32(0)
    return np.ldexp(values, (e - 127)[:, None]).astype(F32)


def k_scales_mins(s):
    """Q4_K/Q5_K: 12 bytes -> 8 six-bit scales and 8 six-bit mins."""
    s = s.astype(np.int32)
    sc = np.empty((s.shape[0], 8), np.int32)
    mn = np.empty((s.shape[0], 8), np.int32)
    sc[:, :4] = s[:, 0:4] & 63
    mn[:, :4] = s[:, 4:8] & 63
    sc[:, 4:] = (s[:, 8:12] & 0x0F) | ((s[:, 0:4] >> 6) << 4)
    mn[:, 4:] = (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)
    return sc, mn


def k_codes_4bit(qs):
    """128 bytes -> codes of 8 sub-blocks of 32: byte 32p + l holds sub-block 2p (low) and 2p + 1 (high)."""
    q = qs.reshape(-1, 4, 32).astype(np.int32)
    codes = np.empty((qs.shape[0], 8, 32), np.int32)
    codes[:, 0::2, :] = q & 0x0F
    codes[:, 1::2, :] = q >> 4
    return codes


def decode_k(raw, codes):
    d, dmin = f16_field(raw, 0), f16_field(raw, 2)
    sc, mn = k_scales_mins(raw[:, 4:16])
    step = d[:, None] * sc.astype(F32)
    offset = dmin[:, None] * mn.astype(F32)
    return (step[:, :, None] * codes.astype(F32) - offset[:, :, None]).reshape(-1, 256)


def decode_q4_k(raw):
    return decode_k(raw, k_codes_4bit(raw[:, 16:144]))


def decode_q5_k(raw):
    codes = k_codes_4bit(raw[:, 48:176])
    qh = raw[:, 16:48].astype(np.int32)  # bit j of qh[l]: fifth bit of element l of sub-block j
    fifth = (qh[:, None, :] >> np.arange(8)[None, :, None]) & 1
    return decode_k(raw, codes + 16 * fifth)


def decode_q6_k(raw):
    ql = raw[:, 0:128].astype(np.int32)
    qh = raw[:, 128:192].astype(np.int32)
    sc = raw[:, 192:208].copy().view(np.int8).astype(F32)
    d = f16_field(raw, 208)
    codes = np.empty((raw.shape[0], 256), np.int32)
    for half in range(2):
        for k in range(4):
            low = (ql[:, 64 * half + 32 * (k % 2): 64 * half + 32 * (k % 2) + 32] >> (4 * (k // 2))) & 0x0F
            high = (qh[:, 32 * half: 32 * half + 32] >> (2 * k)) & 0x3
            codes[:, 128 * half + 32 * k: 128 * half + 32 * k + 32] = low | (high << 4)
    step = d[:, None] * sc  # one per 16 elements
    return np.repeat(step, 16, axis=1) * (codes - 32).astype(F32)


def random_raw(rng, blocks, nbytes):
    return rng.integers(0, 256, (blocks, nbytes), dtype=np.uint8)


def make(rng, name):
    if name == "f16":  # random finite halves (exponent 31 replaced), subnormals included
        bits = rng.integers(0, 1 << 16, BLOCKS * 64, dtype=np.uint16)
        exp = (bits >> 10) & 0x1F
        bits = np.where(exp == 31, (bits & ~np.uint16(0x7C00)) | (rng.integers(0, 31, bits.size) << 10).astype(np.uint16),
                        bits).astype(np.uint16)
        return bits.view(np.uint8).reshape(-1, 2), bits.view("<f2").astype(F32).reshape(-1, 1)
    if name == "bf16":  # every bit pattern, NaNs and infinities included
        bits = rng.integers(0, 1 << 16, BLOCKS * 64, dtype=np.uint16)
        return bits.view(np.uint8).reshape(-1, 2), (bits.astype(np.uint32) << 16).view(F32).reshape(-1, 1)
    if name == "q8_0":
        raw = random_raw(rng, BLOCKS * 8, 34)
        put_f16(raw, 0, scale_values(rng, len(raw)))
        return raw, decode_q8_0(raw)
    if name == "q4_0":
        raw = random_raw(rng, BLOCKS * 8, 18)
        put_f16(raw, 0, scale_values(rng, len(raw)))
        return raw, decode_q4_0(raw)
    if name == "mxfp4":
        raw = random_raw(rng, BLOCKS * 8, 17)
        raw[:, 0] = rng.integers(100, 150, len(raw))
        raw[:8, 0] = [0, 1, 2, 3, 127, 253, 254, 255]  # subnormal scales, and values past float32's range
        return raw, decode_mxfp4(raw)
    if name in ("q4_k", "q5_k"):
        raw = random_raw(rng, BLOCKS, 144 if name == "q4_k" else 176)
        put_f16(raw, 0, scale_values(rng, len(raw)))
        put_f16(raw, 2, scale_values(rng, len(raw)))
        return raw, decode_q4_k(raw) if name == "q4_k" else decode_q5_k(raw)
    if name == "q6_k":
        raw = random_raw(rng, BLOCKS, 210)
        put_f16(raw, 208, scale_values(rng, len(raw), -14, -4))
        return raw, decode_q6_k(raw)
    raise ValueError(name)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20240917)
    lines = []
    with np.errstate(over="ignore", invalid="ignore"):
        for name in ("f16", "bf16", "q8_0", "q4_0", "q4_k", "q5_k", "q6_k", "mxfp4"):
            raw, values = make(rng, name)
            values = np.ascontiguousarray(values, dtype="<f4")
            assert values.shape[0] == raw.shape[0]
            with open(os.path.join(out, name + ".bin"), "wb") as f:
                f.write(np.ascontiguousarray(raw).tobytes())
            with open(os.path.join(out, name + ".f32"), "wb") as f:
                f.write(values.tobytes())
            lines.append(f"{name} {raw.shape[0]} {values.shape[1]}")
    with open(os.path.join(out, "index.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"make_quant_blocks.py: wrote {len(lines)} types to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
