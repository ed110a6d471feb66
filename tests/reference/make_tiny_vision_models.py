#!/usr/bin/env python3
"""Tiny random vision transformers with golden outputs, one folder per case.

Each folder holds a Hugging Face style checkpoint (model.safetensors +
config.json), input.json ({"height", "width"} of the image), pixels.f32 (the
preprocessed image [channels, height, width]) and the float64 forward's
outputs: hidden.f32 (last_hidden_state [tokens, dim]), pooled.f32
(pooler_output [dim]) and embeds.f32 (CLIP's image_embeds, empty otherwise),
all little-endian float32. clip_resnet (CLIP's ModifiedResNet) holds the
last stage's features in hidden.f32 [HW, C], the embedding in pooled.f32 and
the attention pool's weights [heads, 1 + HW] in embeds.f32.

The forward follows the Hugging Face definitions of ViTModel, Dinov2Model,
Dinov2WithRegistersModel, CLIPVisionModel(WithProjection) and
SiglipVisionModel; it runs in float64 on float32 weights and shares no code
with the C++ runtime. Position embeddings are resized with PyTorch's own
bicubic interpolation when the image grid differs from the checkpoint's.

Usage: make_tiny_vision_models.py OUT_DIR
Exits with status 77 and a message when PyTorch is missing.
"""

import json
import math
import os
import shutil
import sys

from tiny_model_files import write_safetensors

torch = None
F = None

# name -> (config.json, weight-name prefix, image height, width). The CLIP with
# projection is saved as a full `clip` config; the ViT leaves layer_norm_eps,
# hidden_act and num_channels to their class defaults.
CASES = {
    "vit": ({"model_type": "vit", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
             "intermediate_size": 64, "image_size": 32, "patch_size": 8}, "", 32, 32),
    "vit_resized": ({"model_type": "vit", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                     "intermediate_size": 48, "image_size": 32, "patch_size": 8, "layer_norm_eps": 1e-6},
                    "vit.", 40, 56),
    "dinov2": ({"model_type": "dinov2", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                "mlp_ratio": 2, "image_size": 28, "patch_size": 7, "layerscale_value": 0.5}, "", 35, 28),
    "dinov2_registers": ({"model_type": "dinov2_with_registers", "hidden_size": 32, "num_hidden_layers": 3,
                          "num_attention_heads": 4, "mlp_ratio": 4, "image_size": 28, "patch_size": 7,
                          "num_register_tokens": 4}, "", 28, 28),
    "clip": ({"model_type": "clip", "projection_dim": 16,
              "vision_config": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                                "intermediate_size": 64, "image_size": 32, "patch_size": 8}},
             "vision_model.", 32, 32),
    "clip_vision": ({"model_type": "clip_vision_model", "hidden_size": 24, "num_hidden_layers": 2,
                     "num_attention_heads": 3, "intermediate_size": 40, "image_size": 24, "patch_size": 6},
                    "vision_model.", 36, 24),
    "siglip": ({"model_type": "siglip_vision_model", "hidden_size": 32, "num_hidden_layers": 2,
                "num_attention_heads": 4, "intermediate_size": 64, "image_size": 32, "patch_size": 8},
               "vision_model.", 40, 32),
}

DEFAULTS = {
    "vit": {"hidden_act": "gelu", "layer_norm_eps": 1e-12},
    "dinov2": {"hidden_act": "gelu", "layer_norm_eps": 1e-6},
    "clip": {"hidden_act": "quick_gelu", "layer_norm_eps": 1e-5},
    "siglip": {"hidden_act": "gelu_pytorch_tanh", "layer_norm_eps": 1e-6},
}


def family(model_type):
    return {"vit": "vit", "dinov2": "dinov2", "dinov2_with_registers": "dinov2", "clip": "clip",
            "clip_vision_model": "clip", "siglip_vision_model": "siglip"}[model_type]


def vision_config(cfg):
    """The vision settings with the class defaults filled in."""
    v = dict(cfg.get("vision_config", cfg))
    fam = family(cfg["model_type"])
    for k, val in DEFAULTS[fam].items():
        v.setdefault(k, val)
    v.setdefault("num_channels", 3)
    if fam == "dinov2":
        v["intermediate_size"] = int(v["hidden_size"] * v["mlp_ratio"])
        v.setdefault("num_register_tokens", 4 if cfg["model_type"] == "dinov2_with_registers" else 0)
        if cfg["model_type"] == "dinov2":
            v["num_register_tokens"] = 0
    v["family"] = fam
    return v


def act(name, x):
    if name == "gelu":
        return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    if name == "gelu_pytorch_tanh":
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    if name == "quick_gelu":
        return x * torch.sigmoid(1.702 * x)
    raise ValueError(name)


def layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * w + b


def lin(W, name, x, bias=True):
    y = x @ W[name + ".weight"].double().T
    return y + W[name + ".bias"].double() if bias else y


def mha(q, k, v, heads):
    n, d = q.shape
    hd = d // heads
    qh = q.view(n, heads, hd).transpose(0, 1)
    kh = k.view(-1, heads, hd).transpose(0, 1)
    vh = v.view(-1, heads, hd).transpose(0, 1)
    p = torch.softmax(qh @ kh.transpose(1, 2) / math.sqrt(hd), dim=-1)
    return (p @ vh).transpose(0, 1).reshape(n, d)


def resized_positions(table, grid, gh, gw):
    """table [grid*grid, D] -> [gh*gw, D] by PyTorch's bicubic interpolation."""
    if (gh, gw) == (grid, grid):
        return table
    d = table.shape[-1]
    img = table.reshape(1, grid, grid, d).permute(0, 3, 1, 2)
    out = F.interpolate(img, size=(gh, gw), mode="bicubic", align_corners=False)
    return out.permute(0, 2, 3, 1).reshape(gh * gw, d)


def names(v):
    """Per-family tensor names (without the checkpoint prefix)."""
    if v["family"] in ("vit", "dinov2"):
        dino = v["family"] == "dinov2"
        return {"patch": "embeddings.patch_embeddings.projection", "cls": "embeddings.cls_token",
                "pos": "embeddings.position_embeddings", "reg": "embeddings.register_tokens",
                "layer": "encoder.layer.{}.", "ln1": "norm1" if dino else "layernorm_before",
                "ln2": "norm2" if dino else "layernorm_after", "q": "attention.attention.query",
                "k": "attention.attention.key", "v": "attention.attention.value", "o": "attention.output.dense",
                "fc1": "mlp.fc1" if dino else "intermediate.dense", "fc2": "mlp.fc2" if dino else "output.dense",
                "final": "layernorm"}
    return {"patch": "embeddings.patch_embedding", "cls": "embeddings.class_embedding",
            "pos": "embeddings.position_embedding.weight", "layer": "encoder.layers.{}.", "ln1": "layer_norm1",
            "ln2": "layer_norm2", "q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
            "o": "self_attn.out_proj", "fc1": "mlp.fc1", "fc2": "mlp.fc2", "final": "post_layernorm"}


def make_weights(v, cfg, prefix, gen):
    D, H, C, P = v["hidden_size"], v["intermediate_size"], v["num_channels"], v["patch_size"]
    G = v["image_size"] // P
    fam, N = v["family"], names(v)
    W = {}

    def rnd(*shape, scale=1.0):
        return torch.randn(*shape, generator=gen) * scale

    def linear(name, out, inp, bias=True):
        W[name + ".weight"] = rnd(out, inp, scale=1 / math.sqrt(inp))
        if bias:
            W[name + ".bias"] = rnd(out, scale=0.1)

    def norm(name, d):
        W[name + ".weight"] = 1 + rnd(d, scale=0.2)
        W[name + ".bias"] = rnd(d, scale=0.1)

    W[N["patch"] + ".weight"] = rnd(D, C, P, P, scale=1 / math.sqrt(C * P * P))
    if fam != "clip":
        W[N["patch"] + ".bias"] = rnd(D, scale=0.1)
    if fam in ("vit", "dinov2"):
        W[N["cls"]] = rnd(1, 1, D)
        W[N["pos"]] = rnd(1, G * G + 1, D, scale=0.5)
        if v.get("num_register_tokens", 0):
            W[N["reg"]] = rnd(1, v["num_register_tokens"], D)
    elif fam == "clip":
        W[N["cls"]] = rnd(D)
        W[N["pos"]] = rnd(G * G + 1, D, scale=0.5)
        norm("pre_layrnorm", D)
    else:
        W[N["pos"]] = rnd(G * G, D, scale=0.5)
    for l in range(v["num_hidden_layers"]):
        p = N["layer"].format(l)
        norm(p + N["ln1"], D)
        norm(p + N["ln2"], D)
        for key in ("q", "k", "v", "o"):
            linear(p + N[key], D, D)
        linear(p + N["fc1"], H, D)
        linear(p + N["fc2"], D, H)
        if fam == "dinov2":
            W[p + "layer_scale1.lambda1"] = cfg.get("layerscale_value", 1.0) + rnd(D, scale=0.1)
            W[p + "layer_scale2.lambda1"] = cfg.get("layerscale_value", 1.0) + rnd(D, scale=0.1)
    norm(N["final"], D)
    if fam == "vit" and prefix == "":
        linear("pooler.dense", D, D)
    if fam == "siglip":
        W["head.probe"] = rnd(1, 1, D)
        W["head.attention.in_proj_weight"] = rnd(3 * D, D, scale=1 / math.sqrt(D))
        W["head.attention.in_proj_bias"] = rnd(3 * D, scale=0.1)
        linear("head.attention.out_proj", D, D)
        norm("head.layernorm", D)
        linear("head.mlp.fc1", H, D)
        linear("head.mlp.fc2", D, H)
    stored = {prefix + k: t for k, t in W.items()}
    if fam == "clip" and "projection_dim" in cfg:
        stored["visual_projection.weight"] = rnd(cfg["projection_dim"], D, scale=1 / math.sqrt(D))
    return W, stored


def forward(v, cfg, W, stored, pixels):
    """Returns (last_hidden_state, pooler_output, image_embeds or None)."""
    D, P, heads, eps = v["hidden_size"], v["patch_size"], v["num_attention_heads"], v["layer_norm_eps"]
    fam, N = v["family"], names(v)
    G = v["image_size"] // P
    conv_w = W[N["patch"] + ".weight"].double()
    conv_b = W[N["patch"] + ".bias"].double() if fam != "clip" else None
    patches = F.conv2d(pixels.unsqueeze(0), conv_w, conv_b, stride=P)[0]  # [D, gh, gw]
    gh, gw = patches.shape[1], patches.shape[2]
    x = patches.flatten(1).T  # [gh*gw, D]
    pos = W[N["pos"]].double().reshape(-1, D)
    if fam == "siglip":
        x = x + resized_positions(pos, G, gh, gw)
    else:
        cls = W[N["cls"]].double().reshape(1, D) + pos[:1]
        x = torch.cat([cls, x + resized_positions(pos[1:], G, gh, gw)])
        if v.get("num_register_tokens", 0):
            x = torch.cat([x[:1], W[N["reg"]].double().reshape(-1, D), x[1:]])
    if fam == "clip":
        x = layer_norm(x, W["pre_layrnorm.weight"].double(), W["pre_layrnorm.bias"].double(), eps)
    for l in range(v["num_hidden_layers"]):
        p = N["layer"].format(l)
        h = layer_norm(x, W[p + N["ln1"] + ".weight"].double(), W[p + N["ln1"] + ".bias"].double(), eps)
        a = lin(W, p + N["o"], mha(lin(W, p + N["q"], h), lin(W, p + N["k"], h), lin(W, p + N["v"], h), heads))
        if fam == "dinov2":
            a = a * W[p + "layer_scale1.lambda1"].double()
        x = x + a
        h = layer_norm(x, W[p + N["ln2"] + ".weight"].double(), W[p + N["ln2"] + ".bias"].double(), eps)
        f = lin(W, p + N["fc2"], act(v["hidden_act"], lin(W, p + N["fc1"], h)))
        if fam == "dinov2":
            f = f * W[p + "layer_scale2.lambda1"].double()
        x = x + f
    normed = layer_norm(x, W[N["final"] + ".weight"].double(), W[N["final"] + ".bias"].double(), eps)
    embeds = None
    if fam == "vit":
        hidden = normed
        pooled = torch.tanh(lin(W, "pooler.dense", normed[0])) if "pooler.dense.weight" in W else normed[0]
    elif fam == "dinov2":
        hidden, pooled = normed, normed[0]
    elif fam == "clip":
        hidden, pooled = x, normed[0]
        if "visual_projection.weight" in stored:
            embeds = pooled @ stored["visual_projection.weight"].double().T
    else:
        hidden = normed
        ipw, ipb = W["head.attention.in_proj_weight"].double(), W["head.attention.in_proj_bias"].double()
        q = W["head.probe"].double().reshape(1, D) @ ipw[:D].T + ipb[:D]
        k = normed @ ipw[D:2 * D].T + ipb[D:2 * D]
        vv = normed @ ipw[2 * D:].T + ipb[2 * D:]
        a = lin(W, "head.attention.out_proj", mha(q, k, vv, heads))
        h = layer_norm(a, W["head.layernorm.weight"].double(), W["head.layernorm.bias"].double(), eps)
        pooled = (a + lin(W, "head.mlp.fc2", act(v["hidden_act"], lin(W, "head.mlp.fc1", h))))[0]
    return hidden, pooled, embeds


# CLIP's ModifiedResNet (OpenAI CLIP model.py), written with torch.nn.functional.
RESNET = {"model_type": "clip_resnet", "layers": [1, 2, 1, 1], "width": 8, "embed_dim": 12, "image_size": 64,
          "heads": 4}


def resnet_weights(cfg, gen):
    W = {}

    def conv(name, out, inp, k):
        W[name + ".weight"] = torch.randn(out, inp, k, k, generator=gen) / math.sqrt(inp * k * k)

    def bn(name, c):
        W[name + ".weight"] = 1 + 0.2 * torch.randn(c, generator=gen)
        W[name + ".bias"] = 0.1 * torch.randn(c, generator=gen)
        W[name + ".running_mean"] = 0.1 * torch.randn(c, generator=gen)
        W[name + ".running_var"] = 0.5 + torch.rand(c, generator=gen)

    w = cfg["width"]
    conv("conv1", w // 2, 3, 3), bn("bn1", w // 2)
    conv("conv2", w // 2, w // 2, 3), bn("bn2", w // 2)
    conv("conv3", w, w // 2, 3), bn("bn3", w)
    inplanes = w
    for stage, blocks in enumerate(cfg["layers"]):
        planes = w << stage
        for i in range(blocks):
            p = f"layer{stage + 1}.{i}."
            conv(p + "conv1", planes, inplanes, 1), bn(p + "bn1", planes)
            conv(p + "conv2", planes, planes, 3), bn(p + "bn2", planes)
            conv(p + "conv3", planes * 4, planes, 1), bn(p + "bn3", planes * 4)
            stride = 2 if (i == 0 and stage > 0) else 1
            if stride > 1 or inplanes != planes * 4:
                conv(p + "downsample.0", planes * 4, inplanes, 1), bn(p + "downsample.1", planes * 4)
            inplanes = planes * 4
    D, G = w * 32, cfg["image_size"] // 32
    W["attnpool.positional_embedding"] = torch.randn(G * G + 1, D, generator=gen) / math.sqrt(D)
    for name, out in (("q_proj", D), ("k_proj", D), ("v_proj", D), ("c_proj", cfg["embed_dim"])):
        W[f"attnpool.{name}.weight"] = torch.randn(out, D, generator=gen) / math.sqrt(D)
        W[f"attnpool.{name}.bias"] = 0.1 * torch.randn(out, generator=gen)
    return W


def resnet_forward(cfg, W, x):
    """Returns (pooled [embed_dim], attention [heads, tokens], features [HW, C])."""
    d = {k: v.double() for k, v in W.items()}

    def bn(name, x):
        return F.batch_norm(x, d[name + ".running_mean"], d[name + ".running_var"], d[name + ".weight"],
                            d[name + ".bias"], training=False, eps=1e-5)

    x = x.unsqueeze(0)
    x = F.relu(bn("bn1", F.conv2d(x, d["conv1.weight"], stride=2, padding=1)))
    x = F.relu(bn("bn2", F.conv2d(x, d["conv2.weight"], padding=1)))
    x = F.relu(bn("bn3", F.conv2d(x, d["conv3.weight"], padding=1)))
    x = F.avg_pool2d(x, 2)
    for stage, blocks in enumerate(cfg["layers"]):
        for i in range(blocks):
            p = f"layer{stage + 1}.{i}."
            stride = 2 if (i == 0 and stage > 0) else 1
            out = F.relu(bn(p + "bn1", F.conv2d(x, d[p + "conv1.weight"])))
            out = F.relu(bn(p + "bn2", F.conv2d(out, d[p + "conv2.weight"], padding=1)))
            if stride > 1:
                out = F.avg_pool2d(out, stride)
            out = bn(p + "bn3", F.conv2d(out, d[p + "conv3.weight"]))
            identity = x
            if p + "downsample.0.weight" in d:
                idn = F.avg_pool2d(x, stride) if stride > 1 else x
                identity = bn(p + "downsample.1", F.conv2d(idn, d[p + "downsample.0.weight"]))
            x = F.relu(out + identity)
    feats = x.flatten(2)[0].T  # [HW, C]
    tok = torch.cat([feats.mean(0, keepdim=True), feats]) + d["attnpool.positional_embedding"]
    heads = cfg["heads"]
    D = tok.shape[1]
    hd = D // heads
    q = (tok[:1] @ d["attnpool.q_proj.weight"].T + d["attnpool.q_proj.bias"]).view(1, heads, hd).transpose(0, 1)
    k = (tok @ d["attnpool.k_proj.weight"].T + d["attnpool.k_proj.bias"]).view(-1, heads, hd).transpose(0, 1)
    v = (tok @ d["attnpool.v_proj.weight"].T + d["attnpool.v_proj.bias"]).view(-1, heads, hd).transpose(0, 1)
    a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hd), dim=-1)  # [heads, 1, T]
    ctx = (a @ v).transpose(0, 1).reshape(1, D)
    pooled = (ctx @ d["attnpool.c_proj.weight"].T + d["attnpool.c_proj.bias"])[0]
    return pooled, a[:, 0, :], feats


def build_resnet(out_dir, seed):
    gen = torch.Generator().manual_seed(seed)
    W = resnet_weights(RESNET, gen)
    size = RESNET["image_size"]
    pixels = torch.randn(3, size, size, generator=gen)
    with torch.no_grad():
        pooled, attn, feats = resnet_forward(RESNET, W, pixels.double())
    folder = os.path.join(out_dir, "clip_resnet")
    os.makedirs(folder)
    write_safetensors(os.path.join(folder, "model.safetensors"), sorted(("visual." + k, t) for k, t in W.items()))
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(RESNET, f, indent=2)
    with open(os.path.join(folder, "input.json"), "w") as f:
        json.dump({"height": size, "width": size, "tokens": attn.shape[1]}, f)
    write_f32(os.path.join(folder, "pixels.f32"), pixels)
    write_f32(os.path.join(folder, "hidden.f32"), feats)
    write_f32(os.path.join(folder, "pooled.f32"), pooled)
    write_f32(os.path.join(folder, "embeds.f32"), attn)


def openclip_names(stored, v, cfg):
    """The `clip` checkpoint under OpenCLIP's names (visual.*; q/k/v fused into
    in_proj; the projection stored transposed as visual.proj), with
    open_clip_config.json."""
    out = {}
    p = "vision_model."
    out["visual.class_embedding"] = stored[p + "embeddings.class_embedding"]
    out["visual.positional_embedding"] = stored[p + "embeddings.position_embedding.weight"]
    out["visual.conv1.weight"] = stored[p + "embeddings.patch_embedding.weight"]
    for a, b in (("pre_layrnorm", "ln_pre"), ("post_layernorm", "ln_post")):
        for kind in ("weight", "bias"):
            out[f"visual.{b}.{kind}"] = stored[f"{p}{a}.{kind}"]
    for l in range(v["num_hidden_layers"]):
        src, dst = f"{p}encoder.layers.{l}.", f"visual.transformer.resblocks.{l}."
        for kind in ("weight", "bias"):
            out[dst + "attn.in_proj_" + kind] = torch.cat([stored[src + f"self_attn.{x}_proj.{kind}"] for x in "qkv"])
            out[dst + "attn.out_proj." + kind] = stored[src + "self_attn.out_proj." + kind]
            out[dst + "ln_1." + kind] = stored[src + "layer_norm1." + kind]
            out[dst + "ln_2." + kind] = stored[src + "layer_norm2." + kind]
            out[dst + "mlp.c_fc." + kind] = stored[src + "mlp.fc1." + kind]
            out[dst + "mlp.c_proj." + kind] = stored[src + "mlp.fc2." + kind]
    out["visual.proj"] = stored["visual_projection.weight"].T.contiguous()
    config = {"model_cfg": {"embed_dim": cfg["projection_dim"], "quick_gelu": True,
                            "vision_cfg": {"image_size": v["image_size"], "layers": v["num_hidden_layers"],
                                           "width": v["hidden_size"], "patch_size": v["patch_size"],
                                           "head_width": v["hidden_size"] // v["num_attention_heads"],
                                           "mlp_ratio": v["intermediate_size"] / v["hidden_size"]}}}
    return out, config


def write_f32(path, t):
    with open(path, "wb") as f:
        if t is not None:
            f.write(t.detach().float().contiguous().numpy().astype("<f4").tobytes())


def build(name, case, out_dir, seed):
    cfg, prefix, height, width = case
    v = vision_config(cfg)
    gen = torch.Generator().manual_seed(seed)
    W, stored = make_weights(v, cfg, prefix, gen)
    pixels = torch.randn(v["num_channels"], height, width, generator=gen)
    with torch.no_grad():
        hidden, pooled, embeds = forward(v, cfg, W, stored, pixels.double())
    folder = os.path.join(out_dir, name)
    os.makedirs(folder)
    write_safetensors(os.path.join(folder, "model.safetensors"), sorted(stored.items()))
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(folder, "input.json"), "w") as f:
        json.dump({"height": height, "width": width, "tokens": hidden.shape[0]}, f)
    write_f32(os.path.join(folder, "pixels.f32"), pixels)
    write_f32(os.path.join(folder, "hidden.f32"), hidden)
    write_f32(os.path.join(folder, "pooled.f32"), pooled)
    write_f32(os.path.join(folder, "embeds.f32"), embeds)
    if name == "clip":  # the same model under OpenCLIP's names
        renamed, oc_config = openclip_names(stored, v, cfg)
        twin = os.path.join(out_dir, "clip_openclip")
        shutil.copytree(folder, twin)
        os.remove(os.path.join(twin, "config.json"))
        write_safetensors(os.path.join(twin, "model.safetensors"), sorted(renamed.items()))
        with open(os.path.join(twin, "open_clip_config.json"), "w") as f:
            json.dump(oc_config, f, indent=2)


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: make_tiny_vision_models.py OUT_DIR\n")
        return 2
    out_dir = sys.argv[1]
    global torch, F
    try:
        import torch as imported_torch
        import torch.nn.functional as imported_f
    except ImportError:
        sys.stderr.write("make_tiny_vision_models.py: PyTorch (python3-torch) is not installed for "
                         f"{sys.executable}; the tiny vision models are not written and their tests skip\n")
        return 77
    torch, F = imported_torch, imported_f
    torch.set_num_threads(1)
    staging = out_dir + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(staging)
    for seed, (name, case) in enumerate(CASES.items(), start=1):
        build(name, case, staging, seed)
    build_resnet(staging, len(CASES) + 1)
    os.rename(staging, out_dir)
    print(f"make_tiny_vision_models.py: wrote {len(os.listdir(out_dir))} models to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
