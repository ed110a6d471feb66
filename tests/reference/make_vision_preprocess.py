#!/usr/bin/env python3
"""Test images and their Hugging Face preprocessing computed with numpy.

Writes into OUT_DIR:
  <image>.png, <image>.rgb    a test image (PNG written here with zlib) and its
                              raw pixels [height, width, 3] uint8
  <case>.json                 a preprocessor_config.json
  <case>.<image>.f32          the preprocessed pixels [3, H, W] float32
  <case>.<image>.shape        "H W"
The numpy code follows PIL's Image.resize for 8-bit images (libImaging/
Resample.c: double-precision filter weights normalised per output pixel,
22-bit fixed point, horizontal pass then vertical, each rounded to 8 bits)
and transformers' resize / center_crop / rescale / normalize. It shares no
code with the C++ runtime, which must match it bit for bit.

Usage: make_vision_preprocess.py OUT_DIR
"""

import json
import math
import os
import shutil
import struct
import sys
import zlib

import numpy as np

PRECISION_BITS = 32 - 8 - 2


def f_box(x):
    return 1.0 if -0.5 < x <= 0.5 else 0.0


def f_bilinear(x):
    x = abs(x)
    return 1.0 - x if x < 1.0 else 0.0


def f_hamming(x):
    x = abs(x)
    if x == 0.0:
        return 1.0
    if x >= 1.0:
        return 0.0
    x = x * math.pi
    return math.sin(x) / x * (0.54 + 0.46 * math.cos(x))


def f_bicubic(x):
    a = -0.5
    x = abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    if x < 2.0:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


def sinc(x):
    if x == 0.0:
        return 1.0
    x = x * math.pi
    return math.sin(x) / x


def f_lanczos(x):
    return sinc(x) * sinc(x / 3) if -3.0 <= x < 3.0 else 0.0


FILTERS = {1: (3.0, f_lanczos), 2: (1.0, f_bilinear), 3: (2.0, f_bicubic), 4: (0.5, f_box), 5: (1.0, f_hamming)}


def coefficients(in_size, out_size, resample):
    """[out_size, in_size] int64 matrix of fixed-point weights."""
    support0, fn = FILTERS[resample]
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = support0 * filterscale
    m = np.zeros((out_size, in_size), dtype=np.int64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        ss = 1.0 / filterscale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        w = [fn((x + xmin - center + 0.5) * ss) for x in range(xmax)]
        ww = 0.0
        for v in w:
            ww += v
        for x in range(xmax):
            v = w[x] / ww if ww != 0.0 else w[x]
            m[xx, xmin + x] = int(-0.5 + v * (1 << PRECISION_BITS)) if v < 0 else int(0.5 + v * (1 << PRECISION_BITS))
    return m


def apply(m, img, axis):
    acc = np.tensordot(m, img.astype(np.int64), axes=([1], [axis]))  # out axis first
    acc = np.moveaxis(acc, 0, axis) + (1 << (PRECISION_BITS - 1))
    return np.clip(acc >> PRECISION_BITS, 0, 255).astype(np.uint8)


def pil_resize(img, width, height, resample):
    h, w, _ = img.shape
    if width != w:
        img = apply(coefficients(w, width, resample), img, 1)
    if height != h:
        img = apply(coefficients(h, height, resample), img, 0)
    return img


def center_crop(img, ch, cw):
    h, w, _ = img.shape
    top, left = (h - ch) // 2, (w - cw) // 2
    if top >= 0 and left >= 0 and top + ch <= h and left + cw <= w:
        return img[top:top + ch, left:left + cw]
    nh, nw = max(ch, h), max(cw, w)
    canvas = np.zeros((nh, nw, 3), dtype=img.dtype)
    tp, lp = math.ceil((nh - h) / 2), math.ceil((nw - w) / 2)
    canvas[tp:tp + h, lp:lp + w] = img
    top, left = top + tp, left + lp
    return canvas[max(0, top):min(nh, top + ch), max(0, left):min(nw, left + cw)]


def preprocess(img, cfg):
    if cfg.get("do_resize", True):
        size = cfg["size"]
        if "shortest_edge" in size:
            h, w, _ = img.shape
            short, long = min(h, w), max(h, w)
            new_short, new_long = size["shortest_edge"], int(size["shortest_edge"] * long / short)
            oh, ow = (new_long, new_short) if w <= h else (new_short, new_long)
        else:
            oh, ow = size["height"], size["width"]
        img = pil_resize(img, ow, oh, cfg["resample"])
    if cfg.get("do_center_crop", False):
        img = center_crop(img, cfg["crop_size"]["height"], cfg["crop_size"]["width"])
    x = img
    if cfg.get("do_rescale", True):
        x = (img.astype(np.float64) * cfg["rescale_factor"]).astype(np.float32)
    if cfg.get("do_normalize", True):
        x = x.astype(np.float32)
        x = (x - np.array(cfg["image_mean"], dtype=np.float32)) / np.array(cfg["image_std"], dtype=np.float32)
    return np.ascontiguousarray(x.astype(np.float32).transpose(2, 0, 1))


CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
CASES = {
    "vit": {"image_processor_type": "ViTImageProcessor", "do_resize": True, "size": {"height": 32, "width": 32},
            "resample": 2, "do_rescale": True, "rescale_factor": 0.00392156862745098, "do_normalize": True,
            "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]},
    "clip": {"image_processor_type": "CLIPImageProcessor", "do_resize": True, "size": {"shortest_edge": 40},
             "resample": 3, "do_center_crop": True, "crop_size": {"height": 40, "width": 40}, "do_rescale": True,
             "rescale_factor": 0.00392156862745098, "do_normalize": True, "image_mean": CLIP_MEAN,
             "image_std": CLIP_STD, "do_convert_rgb": True},
    "dinov2": {"image_processor_type": "BitImageProcessor", "do_resize": True, "size": {"shortest_edge": 73},
               "resample": 3, "do_center_crop": True, "crop_size": {"height": 56, "width": 56}, "do_rescale": True,
               "rescale_factor": 0.00392156862745098, "do_normalize": True, "image_mean": [0.485, 0.456, 0.406],
               "image_std": [0.229, 0.224, 0.225]},
    "siglip_upscale": {"image_processor_type": "SiglipImageProcessor", "do_resize": True,
                       "size": {"height": 150, "width": 97}, "resample": 3, "do_rescale": True,
                       "rescale_factor": 0.00392156862745098, "do_normalize": True, "image_mean": [0.5, 0.5, 0.5],
                       "image_std": [0.5, 0.5, 0.5]},
    "lanczos_pad_crop": {"do_resize": True, "size": {"shortest_edge": 30}, "resample": 1, "do_center_crop": True,
                         "crop_size": {"height": 45, "width": 33}, "do_rescale": True, "rescale_factor": 0.0039,
                         "do_normalize": True, "image_mean": [0.1, 0.2, 0.3], "image_std": [0.7, 0.8, 0.9]},
    "box": {"do_resize": True, "size": {"height": 21, "width": 50}, "resample": 4, "do_rescale": True,
            "rescale_factor": 0.00392156862745098, "do_normalize": False},
    "hamming_raw": {"do_resize": True, "size": {"height": 25, "width": 18}, "resample": 5, "do_rescale": False,
                    "do_normalize": True, "image_mean": [127.0, 120.0, 110.0], "image_std": [60.0, 50.0, 40.0]},
}


def test_images():
    """Gradients, a checkerboard and noise, so every filter tap matters."""
    rng = np.random.default_rng(7)
    out = {}
    for name, (h, w) in {"wide": (61, 97), "tall": (88, 45)}.items():
        y, x = np.mgrid[0:h, 0:w]
        r = (255 * x / (w - 1)).astype(np.int64)
        g = np.where((x // 5 + y // 5) % 2 == 0, 230, 20)
        b = rng.integers(0, 256, size=(h, w))
        out[name] = np.stack([r, g, b], axis=-1).clip(0, 255).astype(np.uint8)
    return out


def write_png(path, img):
    h, w, _ = img.shape
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: make_vision_preprocess.py OUT_DIR\n")
        return 2
    out_dir = sys.argv[1]
    staging = out_dir + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(staging)
    images = test_images()
    for name, img in images.items():
        write_png(os.path.join(staging, name + ".png"), img)
        with open(os.path.join(staging, name + ".rgb"), "wb") as f:
            f.write(img.tobytes())
    for case, cfg in CASES.items():
        with open(os.path.join(staging, case + ".json"), "w") as f:
            json.dump(cfg, f, indent=2)
        for name, img in images.items():
            x = preprocess(img, cfg)
            with open(os.path.join(staging, f"{case}.{name}.f32"), "wb") as f:
                f.write(x.astype("<f4").tobytes())
            with open(os.path.join(staging, f"{case}.{name}.shape"), "w") as f:
                f.write(f"{x.shape[1]} {x.shape[2]}\n")
    os.rename(staging, out_dir)
    print(f"make_vision_preprocess.py: wrote {len(images)} images x {len(CASES)} processor configs to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
