"""sinklab.VisionModel on tiny random vision models (written by
tests/reference/make_tiny_vision_models.py with their float64 PyTorch outputs):
the forward matches them, taps come back by name, preprocessing and image
loading work, bad input raises sinklab.Error."""
import json
import pathlib
import subprocess

import numpy as np
import pytest

import sinklab

SCRIPTS = pathlib.Path(__file__).resolve().parents[1] / "reference"


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    base = tmp_path_factory.mktemp("vision")
    r = subprocess.run(["/usr/bin/python3", SCRIPTS / "make_tiny_vision_models.py", base / "models"],
                       capture_output=True, text=True)
    if r.returncode == 77:
        pytest.skip("python3-torch is missing: the tiny vision models are not written")
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["/usr/bin/python3", SCRIPTS / "make_vision_preprocess.py", base / "images"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return base


def golden(folder):
    meta = json.loads((folder / "input.json").read_text())
    pixels = np.fromfile(folder / "pixels.f32", dtype="<f4").reshape(3, meta["height"], meta["width"])
    hidden = np.fromfile(folder / "hidden.f32", dtype="<f4").reshape(meta["tokens"], -1)
    return pixels, hidden


@pytest.mark.parametrize("name", ["vit", "dinov2_registers", "clip", "siglip"])
def test_forward_matches_reference(assets, name):
    folder = assets / "models" / name
    vm = sinklab.VisionModel(str(folder))
    pixels, hidden = golden(folder)
    out = vm.forward(pixels, taps=["blk.*.resid_out", "blk.0.attn_probs"])
    err = np.abs(out["hidden"] - hidden).max(axis=1) / np.abs(hidden).max(axis=1)
    assert err.max() < 1e-4
    layers = vm.config["layers"]
    assert sorted(out["taps"]) == sorted([f"blk.{l}.resid_out" for l in range(layers)] + ["blk.0.attn_probs"])
    T = hidden.shape[0]
    assert out["taps"]["blk.0.attn_probs"].shape == (vm.config["heads"] * T, T)
    assert (out["embeds"] is not None) == (name == "clip")


def test_preprocess_inspect_and_images(assets):
    vm = sinklab.VisionModel(str(assets / "models" / "vit"))
    img = sinklab.load_image(str(assets / "images" / "wide.png"))
    assert img.shape == (61, 97, 3) and img.dtype == np.uint8
    raw = np.fromfile(assets / "images" / "wide.rgb", dtype=np.uint8).reshape(61, 97, 3)
    assert (img == raw).all()
    x = vm.preprocess(str(assets / "images" / "wide.png"))
    assert x.shape == (3, 32, 32) and x.dtype == np.float32
    rep = vm.inspect(x, test_time_registers=1)
    assert rep["tokens"] == 1 + 16 + 1 and len(rep["layers"]) == 2
    assert "VisionModel vit" in repr(vm)


def test_errors(assets, tmp_path):
    with pytest.raises(sinklab.Error, match="wide.png"):
        sinklab.VisionModel(str(assets / "images" / "wide.png"))
    vm = sinklab.VisionModel(str(assets / "models" / "vit"))
    with pytest.raises(sinklab.Error, match="smaller than one"):
        vm.forward(np.zeros((3, 4, 4), dtype=np.float32))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nxx")
    with pytest.raises(sinklab.Error, match="bad.png"):
        sinklab.load_image(str(bad))


def test_register_neurons_and_test_time_register(assets):
    folder = assets / "models" / "vit"
    vm = sinklab.VisionModel(str(folder))
    pixels, hidden = golden(folder)
    found = vm.find_register_neurons([pixels], detection_layer=1, outlier_threshold=1e-3, top_k=3)
    assert len(found) == 3 and all(found[i][2] >= found[i + 1][2] for i in range(2))
    plain = vm.forward(pixels, taps=["blk.0.ffn_act"], test_time_registers=1)
    edited = vm.forward(pixels, taps=["blk.0.ffn_act"], register_neurons=[(0, 3)])
    a, b = plain["taps"]["blk.0.ffn_act"], edited["taps"]["blk.0.ffn_act"]
    assert a.shape == b.shape == (hidden.shape[0] + 1, vm.config["hidden"])
    assert b[-1, 3] == a[:, 3].max() and (b[1:-1, 3] == 0).all() and b[0, 3] == a[0, 3]
    assert (np.delete(a, 3, axis=1) == np.delete(b, 3, axis=1)).all()
