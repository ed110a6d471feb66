"""Writing one tiny model folder: model.safetensors, config.json, ids.txt
(the token sequence) and logits.f32 ([seq, vocab] little-endian float32).
Shared by make_tiny_models.py and tiny_sink_models.py."""

import json
import os
import struct


def write_safetensors(path, tensors):
    """tensors: list of (name, torch tensor). uint8 tensors (mxfp4 blocks and
    scales) are written as U8, every other one as F32. The layout: u64
    little-endian header length, JSON header, raw little-endian data."""
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    for name, t in tensors:
        if str(t.dtype) == "torch.uint8":
            kind, data = "U8", t.contiguous().numpy().tobytes()
        else:
            kind, data = "F32", t.detach().float().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": kind, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * ((8 - len(head) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for b in blobs:
            f.write(b)


def write_folder(out_dir, name, cfg, W, ids, logits):
    folder = os.path.join(out_dir, name)
    os.makedirs(folder, exist_ok=True)
    write_safetensors(os.path.join(folder, "model.safetensors"), sorted(W.items()))
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(folder, "ids.txt"), "w") as f:
        f.write(" ".join(str(i) for i in ids) + "\n")
    with open(os.path.join(folder, "logits.f32"), "wb") as f:
        f.write(logits.detach().float().numpy().astype("<f4").tobytes())
