"""`sinklab train` from the command line: a short run whose checkpoint every
command loads, data parallelism over 2 MPI ranks matching the single-process
loss curve, and bad configs."""
import json
import pathlib
import os
import random
import shutil
import subprocess

import pytest

from cli_util import assert_one_clear_error, binary, run

WORDS = ("the king said unto them and she walked in the garden of a letter from "
         "Mr. Darcy was very glad light").split()


def write_text(path, n=3000, seed=3):
    rng = random.Random(seed)
    words = [rng.choice(WORDS) + (".\n" if i % 11 == 10 else " ") for i in range(n)]
    path.write_text("".join(words))


def config(tmp_path, out, **train):
    text = tmp_path / "text.txt"
    if not text.exists():
        write_text(text)
    cfg = {"model": {"dim": 32, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "seq_len": 16,
                     "variant": "sink-logit"},
           "train": {"train_text": str(text), "tokenizer_vocab": 300, "batch_size": 2, "grad_accum": 2,
                     "steps": 5, "lr": 5e-3, "warmup_steps": 1, "eval_every": 0, "eval_batches": 2,
                     "log_every": 1, "out_dir": str(out), **train}}
    path = tmp_path / (out.name + ".json")
    path.write_text(json.dumps(cfg))
    return path


def losses(out):
    return [json.loads(line)["loss"] for line in (out / "log.jsonl").read_text().splitlines()]


def test_train_writes_a_checkpoint_every_command_loads(tmp_path):
    out = tmp_path / "run"
    r = run("train", "--config", config(tmp_path, out), "-t", "1")
    assert r.returncode == 0, r.stderr
    assert "step 5/5" in r.stderr and "trained 5 steps" in r.stdout
    for name in ("model.safetensors", "config.json", "tokenizer.json", "train_config.json", "log.jsonl",
                 "checkpoint.json", "checkpoints/step-00000005/optimizer.safetensors",
                 "checkpoints/step-00000005/trainer_state.json", "checkpoints/step-00000005/manifest.json"):
        assert (out / name).exists(), name
    assert len(losses(out)) == 5
    info = run("info", "-m", out, "--json", "-")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["sink_logits"] is True
    assert json.loads(info.stdout)["prior"] == {"kind": "none"}
    gen = run("generate", "-m", out, "-p", "the king", "-n", "5")
    assert gen.returncode == 0, gen.stderr
    # Running the finished config again resumes at its end and changes nothing.
    before = (out / "model.safetensors").read_bytes()
    again = run("train", "--config", config(tmp_path, out), "-t", "1")
    assert again.returncode == 0, again.stderr
    assert (out / "model.safetensors").read_bytes() == before


def mpirun():
    exe = shutil.which("mpirun")
    if not exe:
        pytest.skip("mpirun not installed (Debian: openmpi-bin)")
    args = [exe, "-np", "2", "--oversubscribe"]
    if os.geteuid() == 0:
        args.append("--allow-run-as-root")
    return args


def test_two_mpi_ranks_follow_the_single_process_loss_curve(tmp_path):
    single = tmp_path / "single"
    r = run("train", "--config", config(tmp_path, single), "-t", "1")
    assert r.returncode == 0, r.stderr
    # Same global batch (2 micro-batches per step), one micro-batch per rank.
    ranks = tmp_path / "ranks"
    cmd = mpirun() + [binary(), "train", "--config", str(config(tmp_path, ranks, tokenizer=str(single / "tokenizer.json"))), "-t", "1"]
    env = dict(os.environ, OMPI_MCA_rmaps_base_oversubscribe="1")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "2 rank(s)" in p.stderr
    a, b = losses(single), losses(ranks)
    assert len(a) == len(b) == 5
    for x, y in zip(a, b):
        assert abs(x - y) <= 1e-5 * abs(x), (a, b)
    assert a[-1] < a[0], "the loss went down"


def test_bad_configs_give_one_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"model": {"variant": "magic"}, "train": {"train_text": "x", "out_dir": "y"}}')
    assert_one_clear_error(run("train", "--config", bad), "unknown attention variant 'magic'")
    bad.write_text("{not json")
    assert_one_clear_error(run("train", "--config", bad), "not valid JSON")
    missing = config(tmp_path, tmp_path / "m", train_text=str(tmp_path / "nope.txt"))
    assert_one_clear_error(run("train", "--config", missing), "nope.txt")
    assert_one_clear_error(run("train", "--config", tmp_path / "absent.json"), "absent.json")


def test_relative_paths_in_a_config_follow_the_config_folder(tmp_path):
    sub = tmp_path / "configs"
    sub.mkdir()
    (tmp_path / "text.txt").write_text("hello world " * 50)
    cfg = sub / "c.json"
    cfg.write_text(json.dumps({"model": {"dim": 16, "n_layers": 1, "n_heads": 2, "seq_len": 8},
                               "train": {"train_text": "../text.txt", "out_dir": "../run", "tokenizer_vocab": 300}}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = subprocess.run([str(pathlib.Path(binary()).resolve()), "train", "--config", str(cfg), "--print-config"],
                       capture_output=True, text=True, cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    t = json.loads(r.stdout)["train"]
    assert pathlib.Path(t["train_text"]) == tmp_path / "text.txt"
    assert pathlib.Path(t["out_dir"]) == tmp_path / "run"
