"""The `sinklab` binary: --version, info and generate on the real stories260K
checkpoint, and one clear error line (never a crash) for bad flags or files."""
import json
import os
import subprocess
import shutil

import pytest

from cli_util import ASSETS, MODEL, SOURCE, assert_one_clear_error, binary, run

GOLDEN_TEXT = ASSETS / "golden" / "stories260K_greedy200_expected.txt"


needs_model = pytest.mark.skipif(not MODEL.exists(), reason=f"assets missing: {MODEL} (set SINKLAB_ASSETS)")


def test_version():
    r = run("--version")
    assert r.returncode == 0
    assert r.stdout.startswith("sinklab ") and r.stdout.strip().count(".") == 2


def test_help_lists_the_subcommands():
    r = run("--help")
    assert r.returncode == 0
    for sub in ("info", "generate", "bench"):
        assert sub in r.stdout


@needs_model
def test_info_text():
    r = run("info", "-m", MODEL)
    assert r.returncode == 0, r.stderr
    for want in ("architecture: llama", "layers:       5", "heads:        8 (kv 4, head dim 8)",
                 "vocab:        512", "parameters:   260032", "tied-embeddings", "[172, 64] f32",
                 "tokenizer:    512 tokens"):
        assert want in r.stdout


@needs_model
def test_info_json():
    r = run("info", "-m", MODEL, "--json", "-")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert (j["arch"], j["n_layers"], j["dim"], j["n_kv_heads"], j["n_params"]) == ("llama", 5, 64, 4, 260032)
    assert j["shapes"]["ffn_gate"] == [172, 64]
    names = {t["name"] for t in j["file_tensors"]}
    assert "model.layers.4.mlp.down_proj.weight" in names


DEFAULT_MODEL = SOURCE / "models" / "default"


@pytest.mark.skipif(not (DEFAULT_MODEL / "config.json").exists(), reason="models/default is missing")
def test_info_names_the_attention_variant():
    r = run("info", "-m", DEFAULT_MODEL)
    assert r.returncode == 0, r.stderr
    assert "attention:    sink-token (a learned <|sink|> token first in every sequence)\n" in r.stdout
    j = json.loads(run("info", "-m", DEFAULT_MODEL, "--json", "-").stdout)
    assert j["attention_variant"] == {"name": "sink-token",
                                      "description": "a learned <|sink|> token first in every sequence"}


@needs_model
def test_generate_greedy_prints_the_golden_text():
    r = run("generate", "-m", MODEL, "-n", 20, "--temp", 0)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Once upon a time, there was a little girl named Lily.")
    assert GOLDEN_TEXT.read_text().startswith(r.stdout)
    assert "prompt:    1 tokens" in r.stderr
    assert "generated: 20 tokens" in r.stderr
    assert "prefill" in r.stderr and "decode" in r.stderr and "tokens/s" in r.stderr


@needs_model
def test_generate_with_prompt_and_sampling_is_reproducible():
    args = ("generate", "-m", MODEL, "-p", "Once upon a time", "-n", 30, "--temp", 0.9, "--top-k", 20,
            "--top-p", 0.9, "--min-p", 0.02, "--repeat-penalty", 1.1, "--repeat-last-n", 16, "--seed", 11)
    a, b = run(*args), run(*args, "--no-mmap")
    assert a.returncode == 0, a.stderr
    assert b.returncode == 0, b.stderr
    assert a.stdout == b.stdout  # same seed; the second run on weights copied into memory
    assert a.stdout.startswith("Once upon a time")
    assert "prompt:    5 tokens" in a.stderr


@needs_model
def test_generate_json():
    r = run("generate", "-m", MODEL, "-n", 10, "--temp", 0, "--json", "-", "--dtype", "bf16")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["generated_tokens"] == 10 and len(j["ids"]) == 10
    assert j["text"].startswith("Once upon a time")
    assert j["prompt_ids"] == [1]


@needs_model
@pytest.mark.parametrize("flags, words", [
    (("--top-p", "2"), ("--top-p",)),
    (("--temp", "-1"), ("--temp",)),
    (("--min-p", "1.5"), ("--min-p",)),
    (("-n", "abc"), ("--n-predict",)),
    (("--repeat-penalty", "0"), ("--repeat-penalty",)),
    (("--dtype", "f16"), ("--dtype",)),
    (("--no-such-flag",), ("--no-such-flag",)),
    (("--tokenizer", "/nonexistent/tok.bin"), ("--tokenizer", "/nonexistent/tok.bin")),
    (("-c", "4", "-p", "Once upon a time there was a girl"), ("context",)),
])
def test_generate_bad_flags(flags, words):
    assert_one_clear_error(run("generate", "-m", MODEL, *flags), *words)


def test_missing_model_file():
    assert_one_clear_error(run("generate", "-m", "/nonexistent/model.bin", "-n", 1), "/nonexistent/model.bin")
    assert_one_clear_error(run("info", "-m", "/nonexistent/model.bin"), "/nonexistent/model.bin")


def test_no_model_flag_says_m_is_required():
    if (SOURCE / "models" / "default").is_dir():
        pytest.skip("a default model exists")
    assert_one_clear_error(run("generate", "-n", 1), "-m")


def test_garbage_model_file(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x07" * 100)
    assert_one_clear_error(run("info", "-m", junk), str(junk))


@needs_model
def test_missing_tokenizer(tmp_path):
    lonely = tmp_path / "model.bin"
    shutil.copy(MODEL, lonely)
    assert_one_clear_error(run("generate", "-m", lonely, "-n", 1), "tokenizer")


def test_bench_model_help():
    r = run("bench", "model", "--help")
    assert r.returncode == 0
    assert "--quick" in r.stdout and "--json" in r.stdout


TEXT = ASSETS / "text" / "tinystories_sample.txt"


@needs_model
def test_ppl_streams_with_a_sink_cache(tmp_path):
    out = tmp_path / "ppl.json"
    r = run("ppl", "-m", MODEL, "-f", TEXT, "--cache", "sink", "--sink", "4", "--window", "60",
            "--max-tokens", "300", "--json", out, "--chunk", "100")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("perplexity: "), r.stdout
    ppl = float(r.stdout.split()[1])
    assert 1.0 < ppl < 100.0
    assert "tokens 299/299" in r.stderr and "cache 64/64" in r.stderr and "MiB" in r.stderr
    j = json.loads(out.read_text())
    assert j["predicted"] == 299 and j["capacity"] == 64
    assert [c["tokens"] for c in j["chunks"]] == [100, 100, 99]
    assert abs(j["ppl"] - ppl) < 1e-3 * ppl


@needs_model
def test_ppl_recompute_and_positions(tmp_path):
    base = ("ppl", "-m", MODEL, "-f", TEXT, "--cache", "sink:sink=4,window=28", "--max-tokens", "120")
    values = {}
    for extra in ((), ("--positions", "shift"), ("--positions", "absolute"), ("--recompute",)):
        r = run(*base, *extra)
        assert r.returncode == 0, r.stderr
        values[extra] = float(r.stdout.split()[1])
    assert abs(values[()] - values[("--positions", "shift")]) < 1e-3 * values[()]
    assert values[("--recompute",)] != values[()]


@needs_model
def test_ppl_dense_past_its_context_is_scored_in_windows_and_says_so():
    r = run("ppl", "-m", MODEL, "-f", TEXT, "-c", "64", "--max-tokens", "100")
    assert r.returncode == 0, r.stderr
    assert "scored in windows of 64 tokens" in r.stderr
    assert "dense in 2 windows" in r.stdout
    rec = run("ppl", "-m", MODEL, "-f", TEXT, "-c", "64", "--max-tokens", "100", "--recompute")
    assert rec.returncode == 0 and "dense in 2 windows" in rec.stdout, rec.stderr
    # The same as a base run: no "context full" from the base either.
    r = run("ppl", "-m", MODEL, "-f", TEXT, "--max-tokens", "600", "--cache", "sink", "--kl-base", "dense")
    assert r.returncode == 0, r.stderr
    assert "kl(base || this)" in r.stdout


@needs_model
@pytest.mark.parametrize("cache,resolved", [("window", "window:window=512"), ("sink", "sink:sink=4,window=508"),
                                            ("dense", "dense:limit=512")])
def test_cache_policies_default_their_sizes_to_the_context(cache, resolved):
    r = run("ppl", "-m", MODEL, "-f", TEXT, "--max-tokens", "40", "--cache", cache)
    assert r.returncode == 0, r.stderr
    assert f"cache {resolved}" in r.stdout
    r = run("stream", "-m", MODEL, "-n", "5", "-s", "1", "--cache", cache)
    assert r.returncode == 0, r.stderr
    assert f"cache {resolved}" in r.stderr  # stream honours --cache dense too


@needs_model
def test_stream_defaults_to_a_sink_cache_sized_by_the_context():
    r = run("stream", "-m", MODEL, "-n", "5", "-s", "1")
    assert r.returncode == 0, r.stderr
    assert "cache sink:sink=4,window=508" in r.stderr
    assert "-c" in run("stream", "--help").stdout


@needs_model
def test_ppl_compares_several_caches_on_the_same_tokens(tmp_path):
    out = {k: tmp_path / f"cmp.{k}" for k in ("json", "csv", "html")}
    r = run("ppl", "-m", MODEL, "-f", TEXT, "--max-tokens", "200", "--cache", "dense,sink:sink=4,window=60",
            "--cache", "window:window=64", "--json", out["json"], "--csv", out["csv"], "--html", out["html"])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["cache", "positions", "capacity"]
    rows = [line.split() for line in lines[1:4]]
    assert [row[0] for row in rows] == ["dense:limit=512", "sink:sink=4,window=60", "window:window=64"]
    assert float(rows[0][4]) == 0.0 and float(rows[1][4]) > 0 and float(rows[2][4]) > 0  # KL to the first
    j = json.loads(out["json"].read_text())
    assert j["format"] == "sinklab-ppl-comparison" and len(j["runs"]) == 3
    assert all(run_["predicted"] == 199 for run_ in j["runs"])
    # Each run equals the single-cache command on the same tokens.
    single = run("ppl", "-m", MODEL, "-f", TEXT, "--max-tokens", "200", "--cache", "sink:sink=4,window=60")
    assert abs(float(single.stdout.split()[1]) - j["runs"][1]["ppl"]) < 1e-3
    csv = out["csv"].read_text().splitlines()
    assert csv[0].startswith("cache,positions,capacity,ppl") and len(csv) == 4
    html = out["html"].read_text()
    assert "sinklab-ppl-comparison" in html and "token_nll" in html and "http" not in html.split("<script")[0]
    bad = run("ppl", "-m", MODEL, "-f", TEXT, "--cache", "dense,sink", "--window", "8")
    assert_one_clear_error(bad, "--window", "each spec")


@needs_model
@pytest.mark.parametrize("content,words", [(b"", ["empty"]), (b"Once \xff\xfe upon", ["UTF-8", "offset 5"])])
def test_ppl_bad_text_is_one_clear_error(tmp_path, content, words):
    f = tmp_path / "t.txt"
    f.write_bytes(content)
    assert_one_clear_error(run("ppl", "-m", MODEL, "-f", f, "--cache", "sink", "--sink", "4", "-c", "64"), *words)


@needs_model
@pytest.mark.parametrize("flags,words", [
    (["--cache", "sink", "--sink", "64", "-c", "64"], ["sink=64", "context of 64"]),
    (["--cache", "dense", "--window", "8"], ["--window", "dense"]),
    (["--cache", "sink:sink=8,budget=8"], ["sink", "budget"]),
    (["--cache", "sink-logit", "--window", "8"], ["sink logits"]),
    (["--cache", "nosuch"], ["nosuch"]),
    (["--cache", "window", "--window", "8", "--positions", "sideways"], ["positions"]),
])
def test_ppl_bad_cache_flags(flags, words):
    assert_one_clear_error(run("ppl", "-m", MODEL, "-f", TEXT, *flags), *words)


@needs_model
def test_stream_generates_past_the_training_length():
    r = run("stream", "-m", MODEL, "--cache", "sink", "--sink", "4", "--window", "60", "-n", "700",
            "--temp", "0.8", "-s", "3", "--ignore-eos")
    assert r.returncode == 0, r.stderr
    assert "evicted" in r.stderr and "cache 64/64" in r.stderr
    assert "generated 700" in r.stderr


@needs_model
def test_ppl_kl_base(tmp_path):
    base = ("ppl", "-m", MODEL, "-f", TEXT, "--cache", "sink:sink=4,window=60", "--max-tokens", "200")
    same = run(*base, "--kl-base", "sink:sink=4,window=60")
    assert same.returncode == 0, same.stderr
    kl_same = float(same.stdout.splitlines()[1].split(":")[1].split()[0])
    assert kl_same == 0.0
    out = tmp_path / "kl.json"
    dense = run(*base, "--kl-base", "dense", "--json", out, "--chunk", "50")
    assert dense.returncode == 0, dense.stderr
    kl_dense = float(dense.stdout.splitlines()[1].split(":")[1].split()[0])
    assert kl_dense > 1e-4  # evictions change the distributions once the window is full
    j = json.loads(out.read_text())
    assert j["kl_base"] == "dense" and abs(j["kl"] - kl_dense) < 1e-5
    assert j["chunks"][0]["kl"] < 1e-6  # the first 50 predictions fit in the cache: identical
    bad = run(*base, "--kl-base", "nonsense")
    assert bad.returncode != 0 and "nonsense" in bad.stderr


COMMANDS = ["info", "generate", "stream", "ppl", "inspect", "litm", "convert", "train", "train-tokenizer"]
BENCH = ["attention", "model", "stream", "train"]


def test_every_command_takes_threads_and_json_is_a_path_everywhere():
    for cmd in COMMANDS + [f"bench {b}" for b in BENCH]:
        r = run(*cmd.split(), "--help")
        assert r.returncode == 0, (cmd, r.stderr)
        assert "-t,--threads" in r.stdout, cmd
        if "--json" in r.stdout:
            line = next(x for x in r.stdout.splitlines() if "--json" in x)
            assert "TEXT" in line, (cmd, line)  # a path (or '-'), never a switch
    assert "--query-positions" in run("litm", "--help").stdout
    assert "--positions" not in run("litm", "--help").stdout


@needs_model
def test_json_dash_prints_and_a_path_writes(tmp_path):
    for cmd in (["info", "-m", MODEL], ["generate", "-m", MODEL, "-n", 4, "-s", 1],
                ["stream", "-m", MODEL, "-n", 4, "-s", 1]):
        printed = run(*cmd, "--json", "-")
        assert printed.returncode == 0, printed.stderr
        j = json.loads(printed.stdout)
        out = tmp_path / f"{cmd[0]}.json"
        written = run(*cmd, "--json", out)
        assert written.returncode == 0, written.stderr
        assert set(json.loads(out.read_text())) == set(j), cmd[0]
        assert_one_clear_error(run(*cmd, "--json", out), "already exists")


@needs_model
def test_stream_and_generate_stop_cleanly_when_a_dense_context_is_full():
    r = run("stream", "-m", MODEL, "--cache", "dense", "-c", 100, "-n", 600, "-s", 1, "--ignore-eos")
    assert r.returncode == 0, r.stderr
    assert "error" not in r.stdout and "context full" not in r.stdout
    assert "stopped: context full (100 tokens)" in r.stderr
    g = run("generate", "-m", MODEL, "-c", 100, "-n", 600, "-s", 1, "--ignore-eos")
    assert g.returncode == 0 and "stopped:   context full (100 tokens)" in g.stderr, g.stderr


@needs_model
def test_stream_has_the_sampling_flags_of_generate_and_ablate():
    for flag in ("--min-p", "--repeat-penalty", "--repeat-last-n", "--top-k", "--top-p", "--ablate", "--json"):
        assert flag in run("stream", "--help").stdout, flag
        if flag != "--ablate":
            assert flag in run("generate", "--help").stdout, flag
    r = run("stream", "-m", MODEL, "-n", 20, "-s", 3, "--min-p", 0.1, "--repeat-penalty", 1.3,
            "--ablate", "sink:keys=0", "--json", "-")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["generated_tokens"] == 20 and j["ablate"] == ["sink:keys=0"]


def make_hf_cache(root, repo="sinklab-test/tiny"):
    """A Hugging Face cache layout: blobs, a snapshot of symlinks, refs/main."""
    folder = root / ("models--" + repo.replace("/", "--"))
    (folder / "blobs").mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("0123abcd")
    snap = folder / "snapshots" / "0123abcd"
    snap.mkdir(parents=True)
    (folder / "snapshots" / "older").mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        blob = folder / "blobs" / ("blob-" + name)
        blob.write_bytes((DEFAULT_MODEL / name).read_bytes())
        (snap / name).symlink_to(blob)
    return snap


def test_a_repo_id_resolves_to_the_local_hugging_face_cache(tmp_path):
    snap = make_hf_cache(tmp_path / "hub")
    env = dict(os.environ, HF_HUB_CACHE=str(tmp_path / "hub"))
    r = subprocess.run([binary(), "info", "-m", "sinklab-test/tiny", "--json", "-"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["path"] == str(snap)
    env = dict(os.environ, HF_HUB_CACHE=str(tmp_path / "empty"), HF_HOME=str(tmp_path / "home"))
    r = subprocess.run([binary(), "info", "-m", "sinklab-test/absent"], capture_output=True, text=True, env=env,
                       timeout=60)
    assert r.returncode != 0
    assert "looked in" in r.stderr and str(tmp_path / "empty") in r.stderr and "never downloads" in r.stderr
