"""`sinklab inspect --image` on tiny random vision models (written by
tests/reference/make_tiny_vision_models.py, which needs python3-torch) and a
test image (tests/reference/make_vision_preprocess.py): the report, the
test-time register run, and one clear error line for bad input."""
import json
import subprocess

import pytest

from cli_util import SOURCE, assert_one_clear_error, run

SCRIPTS = SOURCE / "tests" / "reference"


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


def test_inspect_image_writes_the_report(assets, tmp_path):
    model = assets / "models" / "dinov2_registers"
    r = run("inspect", "-m", model, "--image", assets / "images" / "wide.png", "--out", tmp_path / "rep")
    assert r.returncode == 0, r.stderr
    assert "median patch norm" in r.stdout and "4 registers" in r.stdout, r.stdout
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["format"] == "sinklab-vision-inspect"
    assert rep["grid"] == [4, 4] and rep["tokens"] == 1 + 4 + 16
    assert len(rep["layers"]) == 3
    for layer in rep["layers"]:
        assert len(layer["norms"]) == 21 and len(layer["cls_to_patches"]) == 16
        total = sum(layer["cls_to_patches"]) + sum(layer["cls_to_others"])
        assert abs(total - 1) < 1e-4
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "sinklab inspect: vision" in page and "data:image/png;base64," in page


def test_test_time_register_run(assets, tmp_path):
    model = assets / "models" / "vit"
    out = tmp_path / "rep"
    r = run("inspect", "-m", model, "--image", assets / "images" / "tall.png", "--out", out,
            "--register-neurons", "0:3,1:5")
    assert r.returncode == 0, r.stderr
    rep = json.loads((out / "report.json").read_text())
    assert [(n["layer"], n["neuron"]) for n in rep["register_neurons"]["neurons"]] == [(0, 3), (1, 5)]
    assert rep["after"]["tokens"] == rep["tokens"] + 1 and rep["after"]["test_time_registers"] == 1
    r = run("inspect", "-m", model, "--image", assets / "images" / "tall.png", "--out", out, "--force",
            "--test-time-register", "--detection-layer", 1, "--outlier-threshold", 1e-3, "--top-k", 3)
    assert r.returncode == 0, r.stderr
    found = json.loads((out / "report.json").read_text())["register_neurons"]
    assert len(found["neurons"]) == 3 and found["outlier_tokens"] == rep["tokens"]
    assert "register neurons (3):" in r.stdout


def test_bad_input_gives_one_clear_error(assets, tmp_path):
    model = assets / "models" / "vit"
    png = (assets / "images" / "wide.png").read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(png[: len(png) // 2])
    assert_one_clear_error(run("inspect", "-m", model, "--image", cut, "--out", tmp_path / "a"), str(cut))
    assert_one_clear_error(run("inspect", "-m", model, "--image", tmp_path / "none.png", "--out", tmp_path / "b"),
                           "none.png")
    assert_one_clear_error(run("inspect", "-m", model, "--image", assets / "images" / "wide.png", "--out",
                               tmp_path / "c", "--register-neurons", "3-4"), "--register-neurons")
    assert_one_clear_error(run("inspect", "-m", model, "--image", assets / "images" / "wide.png", "--out",
                               tmp_path / "d", "--register-neurons", "7:1"), "out of range")
    assert_one_clear_error(run("inspect", "-m", model, "--image", assets / "images" / "wide.png", "-f",
                               assets / "images" / "vit.json", "--out", tmp_path / "e"), "exclusive")


def test_quantization_table(assets, tmp_path):
    model = assets / "models" / "dinov2_registers"
    r = run("inspect", "-m", model, "--image", assets / "images" / "wide.png", "--out", tmp_path / "rep", "--quant",
            "--regcache-layer", 1, "--regcache-tokens", 2)
    assert r.returncode == 0, r.stderr
    q = json.loads((tmp_path / "rep" / "report.json").read_text())["quant"]
    assert [row["setting"] for row in q["rows"]][::2] == ["W8A8 per-tensor", "W8A8 per-token", "W4A8 per-tensor",
                                                          "W4A8 per-token"]
    assert [row["regcache"] for row in q["rows"]] == [False, True] * 4
    assert q["regcache"]["first_layer"] == 1 and len(q["regcache"]["prefix_tokens"]) == 2
    assert all(0 < row["pooled_error"] < 1 and len(row["layer_errors"]) == 3 for row in q["rows"])
    assert "W4A8 per-token" in r.stdout
    assert_one_clear_error(run("inspect", "-m", model, "--image", assets / "images" / "wide.png", "--out",
                               tmp_path / "b", "--quant", "--regcache-layer", 7), "--regcache-layer")


def test_clip_resnet_decomposition(assets, tmp_path):
    model = assets / "models" / "clip_resnet"
    r = run("inspect", "-m", model, "--image", assets / "images" / "wide.png", "--out", tmp_path / "rep",
            "--top-k", 5)
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    d = rep["decomposition"]
    assert d["sum_error"] < 1e-5 and len(d["top"]) == 5
    assert [p["norm"] for p in d["top"]] == sorted((p["norm"] for p in d["top"]), reverse=True)
    assert len(d["head_attention"]) == 4 and all(abs(sum(a) - 1) < 1e-5 for a in d["head_attention"])
    assert "top pairs" in r.stdout
    assert "neuron" in (tmp_path / "rep" / "report.html").read_text()


def test_train_vit_then_inspect(tmp_path):
    out = tmp_path / "vit"
    r = run("train-vit", "--out", out, "--steps", 4, "--log-every", 2, "--dim", 16, "--layers", 2, "--heads", 2,
            "--hidden", 32, "--image-size", 16, "--batch", 4, "--registers", 2, "--samples", 1, "-t", 1)
    assert r.returncode == 0, r.stderr
    assert "step      4  loss" in r.stdout
    log = json.loads((out / "train_log.json").read_text())
    assert [e["step"] for e in log["log"]] == [2, 4] and log["config"]["registers"] == 2
    assert json.loads((out / "config.json").read_text())["model_type"] == "dinov2_with_registers"
    r = run("inspect", "-m", out, "--image", out / "sample-0.png", "--out", tmp_path / "rep")
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["tokens"] == 1 + 2 + 16 and rep["model"]["registers"] == 2
    assert_one_clear_error(run("train-vit", "--out", out, "--steps", 1), "exists")
