"""Outputs never replace what they must not: an existing file only with
--force, never an input of the same command (compared by inode, symlinks
too), never a device, FIFO or folder, and an unwritable output is refused
before any computation."""
import hashlib
import json
import os
import shutil
import stat

import pytest

from cli_util import SOURCE, assert_one_clear_error, run

BB = SOURCE / "models" / "bb-vanilla-3l"


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def model(tmp_path):
    dst = tmp_path / "model"
    shutil.copytree(BB, dst)
    return dst


def test_convert_refuses_existing_outputs_and_its_own_inputs(model, tmp_path):
    weights = model / "model.safetensors"
    before = digest(weights)
    # Onto its own input: refused even with --force; the input is unchanged.
    for extra in ((), ("--force",)):
        assert_one_clear_error(run("convert", "-m", model, "-o", weights, *extra), "is an input of this command")
    link = tmp_path / "link.gguf"
    os.symlink(weights, link)
    assert_one_clear_error(run("convert", "-m", model, "-o", link, "--force"), "is an input of this command")
    assert digest(weights) == before
    # An unrelated existing file needs --force; then it is replaced.
    other = tmp_path / "other.gguf"
    other.write_text("precious")
    assert_one_clear_error(run("convert", "-m", model, "-o", other), "already exists; pass --force")
    assert other.read_text() == "precious"
    r = run("convert", "-m", model, "-o", other, "--force")
    assert r.returncode == 0, r.stderr
    assert other.read_bytes()[:4] == b"GGUF"
    # A symlink to another file: --force replaces the link, never its target.
    target = tmp_path / "target.txt"
    target.write_text("keep me")
    link2 = tmp_path / "link2.gguf"
    os.symlink(target, link2)
    r = run("convert", "-m", model, "-o", link2, "--force")
    assert r.returncode == 0, r.stderr
    assert target.read_text() == "keep me" and not link2.is_symlink()


@pytest.mark.skipif(os.geteuid() != 0, reason="replacing /dev/null needs root to be a real danger")
def test_convert_never_replaces_a_device_node(model):
    assert_one_clear_error(run("convert", "-m", model, "-o", "/dev/null", "--force"), "is a device node")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_special_files_and_unwritable_folders_are_refused_up_front(model, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert_one_clear_error(run("convert", "-m", model, "-o", fifo, "--force"), "is a FIFO")
    assert_one_clear_error(run("convert", "-m", model, "-o", tmp_path, "--force"), "is a directory")
    assert_one_clear_error(run("ppl", "-m", model, "--task-stream", 100000, "--json", tmp_path / "no" / "x.json"),
                           "does not exist")


def test_ppl_json_never_overwrites_the_model(model, tmp_path):
    weights = model / "model.safetensors"
    before = digest(weights)
    for extra in ((), ("--force",)):
        assert_one_clear_error(run("ppl", "-m", model, "--task-stream", 64, "--json", weights, *extra),
                               "is an input of this command")
    assert digest(weights) == before
    out = tmp_path / "ppl.json"
    assert run("ppl", "-m", model, "--task-stream", 64, "--json", out).returncode == 0
    assert_one_clear_error(run("ppl", "-m", model, "--task-stream", 64, "--json", out), "already exists")
    assert run("ppl", "-m", model, "--task-stream", 64, "--json", out, "--force").returncode == 0
    assert json.loads(out.read_text())["predicted"] == 63


def test_inspect_out_needs_force_to_replace_a_report(model, tmp_path):
    out = tmp_path / "rep"
    assert run("inspect", "-m", model, "--out", out).returncode == 0
    assert_one_clear_error(run("inspect", "-m", model, "--out", out), "already exists; pass --force")
    assert run("inspect", "-m", model, "--out", out, "--force").returncode == 0


def test_train_tokenizer_outputs(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the king said unto them and she walked in the garden of light " * 200)
    before = digest(corpus)
    assert_one_clear_error(run("train-tokenizer", "-f", corpus, "-o", corpus, "--force", "--vocab", 300),
                           "is an input of this command")
    assert digest(corpus) == before
    out = tmp_path / "tok.json"
    out.write_text("{}")
    assert_one_clear_error(run("train-tokenizer", "-f", corpus, "-o", out, "--vocab", 300), "already exists")
    assert run("train-tokenizer", "-f", corpus, "-o", out, "--vocab", 300, "--force").returncode == 0
    assert json.loads(out.read_text())["model"]["type"] == "BPE"


def test_train_refuses_a_model_folder_without_a_checkpoint(model):
    cfg = {"model": {"dim": 16, "n_layers": 1, "n_heads": 1, "seq_len": 16},
           "data": {"task": "bigram-backcopy", "vocab": 16},
           "train": {"batch_size": 2, "steps": 2, "eval_batches": 0, "out_dir": str(model)}}
    path = model.parent / "cfg.json"
    path.write_text(json.dumps(cfg))
    before = digest(model / "model.safetensors")
    assert_one_clear_error(run("train", "--config", path), "holds files but no checkpoint")
    assert digest(model / "model.safetensors") == before


def test_inputs_that_are_not_regular_files_get_one_clear_error(tmp_path):
    loop_a, loop_b = tmp_path / "a", tmp_path / "b"
    os.symlink(loop_b, loop_a)
    os.symlink(loop_a, loop_b)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert_one_clear_error(run("ppl", "-m", loop_a, "-f", SOURCE / "README.md"), "loop of symbolic links")
    assert_one_clear_error(run("ppl", "-m", BB, "-f", loop_a), "loop of symbolic links")
    assert_one_clear_error(run("ppl", "-m", BB, "-f", tmp_path), "is a directory, not a file")
    assert_one_clear_error(run("ppl", "-m", BB, "-f", "/dev/zero"), "is a device")
    assert_one_clear_error(run("ppl", "-m", BB, "-f", fifo, timeout=20), "is a FIFO")
    assert_one_clear_error(run("ppl", "-m", fifo, "-f", SOURCE / "README.md", timeout=20), "is a FIFO")
    assert_one_clear_error(run("inspect", "-m", BB, "-f", tmp_path, "--out", tmp_path / "o"), "is a directory")
    assert_one_clear_error(run("train-tokenizer", "-f", fifo, "-o", tmp_path / "t.json", timeout=20), "is a FIFO")


def test_max_tokens_reads_only_what_it_needs(tmp_path):
    """A 24 MB text with --max-tokens 100 is scored from a prefix: the same
    perplexity as the first 64 KB alone, in bounded memory (a data limit of
    400 MB that reading and tokenizing the whole text would exceed)."""
    import resource
    chunk = (SOURCE / "README.md").read_text(encoding="utf-8")
    big = tmp_path / "big.txt"
    with open(big, "w", encoding="utf-8") as f:
        while f.tell() < 24 << 20:
            f.write(chunk)
    small = tmp_path / "small.txt"
    small.write_text(chunk[:65536], encoding="utf-8")

    def limited():
        resource.setrlimit(resource.RLIMIT_DATA, (400 << 20, 400 << 20))

    import subprocess
    from cli_util import binary
    out = {}
    for name, path in (("big", big), ("small", small)):
        r = subprocess.run([binary(), "ppl", "-m", str(SOURCE / "models" / "default"), "-f", str(path),
                            "--max-tokens", "100", "--cache", "sink", "--sink", "4", "--window", "124", "-t", "1"],
                           capture_output=True, text=True, timeout=120, preexec_fn=limited)
        assert r.returncode == 0, r.stderr
        out[name] = r.stdout.split("perplexity: ")[1].split()[0]
    assert out["big"] == out["small"]


def test_inspect_refuses_attention_matrices_that_cannot_fit(tmp_path):
    text = tmp_path / "long.txt"
    text.write_text("x " * 300000)
    r = run("inspect", "-m", SOURCE / "models" / "default", "-f", text, "--tokens", 200000, "--out", tmp_path / "o")
    assert_one_clear_error(r, "attention probabilities", "200000 tokens", "use fewer tokens")


def test_bench_json_follows_the_same_rules(tmp_path):
    out = tmp_path / "bench.json"
    out.write_text("{}")
    assert_one_clear_error(run("bench", "train", "--quick", "--json", out), "already exists; pass --force")
    assert out.read_text() == "{}"
    assert_one_clear_error(run("bench", "model", "--json", tmp_path, "--force"), "is a directory")


def test_inspect_default_folder_replaces_only_its_own_report(tmp_path):
    import subprocess
    from cli_util import binary

    def inspect():
        return subprocess.run([os.path.abspath(binary()), "inspect", "-m", str(BB)], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)
    assert inspect().returncode == 0
    again = inspect()
    assert again.returncode == 0, again.stderr  # the same command twice: its own report is replaced
    (tmp_path / "inspect-report" / "report.json").write_text("{}")
    assert_one_clear_error(inspect(), "already exists; pass --force")
    assert (tmp_path / "inspect-report" / "report.json").read_text() == "{}"
