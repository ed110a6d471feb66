"""Streaming from the command line: the `bench stream` smoke run, per-token
metadata for the modal and chunked caches (--chunk-tokens, --meta), and bad
input (a cache larger than memory, shift without RoPE, bad metadata files)."""
import json
import random
import struct

import pytest

from cli_util import ASSETS, MODEL, assert_one_clear_error, run

TEXT = ASSETS / "text" / "tinystories_sample.txt"
TOKENIZER = ASSETS / "models" / "stories260K" / "tok512.bin"
needs_model = pytest.mark.skipif(not MODEL.exists() or not TEXT.exists(), reason="stories260K assets missing")


def perplexity(result):
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("perplexity: "), result.stdout
    return float(result.stdout.split()[1])


@needs_model
def test_bench_stream_smoke_writes_every_field(tmp_path):
    out = tmp_path / "stream.json"
    r = run("bench", "stream", "-m", MODEL, "-f", TEXT, "--quick", "--window", "60", "--marks", "200,500",
            "--latency-tokens", "64", "--windows", "32,64", "--sink-tokens", "8", "--recompute-tokens", "2",
            "--json", out)
    assert r.returncode == 0, r.stderr
    j = json.loads(out.read_text())
    assert j["command"].startswith("sinklab bench stream") and "--marks 200,500" in j["command"]
    assert j["tokens_source"].startswith("text ") and j["random_ids"] is False
    assert j["flat"]["cache"] == "sink:sink=4,window=60"
    assert [m["tokens"] for m in j["flat"]["marks"]] == [200, 500]
    for m in j["flat"]["marks"]:
        assert m["latency_us"] > 0 and m["latency_min_us"] > 0 and m["rss_mib"] > 0
    assert j["latency_ratio_last_first"] > 0 and j["rss_ratio_last_first"] > 0
    assert j["latency_vs_fresh_ratio_last_first"] > 0
    assert all(m["fresh_latency_us"] > 0 for m in j["flat"]["marks"])
    assert [s["cache"] for s in j["speedup"]] == [32, 64]
    for s in j["speedup"]:
        assert s["sink_us_per_token"] > 0 and s["recompute_us_per_token"] > 0 and s["speedup"] > 0
        assert s["recompute_tokens_timed"] == 2 and s["sink_tokens_timed"] == 8


@needs_model
def test_bench_stream_random_ids_and_bad_marks(tmp_path):
    out = tmp_path / "stream.json"
    r = run("bench", "stream", "-m", MODEL, "--random-ids", "--window", "28", "--marks", "100",
            "--latency-tokens", "16", "--windows", "16", "--sink-tokens", "4", "--recompute-tokens", "1",
            "--json", out)
    assert r.returncode == 0, r.stderr
    j = json.loads(out.read_text())
    assert j["random_ids"] is True and "random" in j["tokens_source"]
    assert_one_clear_error(run("bench", "stream", "-m", MODEL, "--marks", "500,200"), "--marks", "increasing")
    assert_one_clear_error(run("bench", "stream", "-m", MODEL, "--random-ids", "-f", TEXT), "--random-ids")


@needs_model
def test_chunked_and_modal_caches_that_never_evict_equal_dense():
    base = ("ppl", "-m", MODEL, "-f", TEXT, "--max-tokens", "200")
    dense = perplexity(run(*base))
    chunked = perplexity(run(*base, "--cache", "chunked:sink_chunks=1,window_chunks=20", "--chunk-tokens", "16"))
    modal = perplexity(run(*base, "--cache", "modal:text_sink=4,text_window=200", "--round-tokens", "8"))
    assert abs(chunked - dense) < 1e-4 * dense
    assert abs(modal - dense) < 1e-4 * dense


@needs_model
def test_chunked_cache_evicts_whole_chunks(tmp_path):
    out = tmp_path / "ppl.json"
    r = run("ppl", "-m", MODEL, "-f", TEXT, "--max-tokens", "200", "--cache",
            "chunked:sink_chunks=1,window_chunks=4", "--chunk-tokens", "16", "--json", out)
    perplexity(r)
    j = json.loads(out.read_text())
    assert j["capacity"] == 80 and j["cache"].endswith("chunk_tokens=16")
    # 199 tokens fed: chunk 0 (16) + chunks 9..11 (48) + 7 tokens of chunk 12.
    assert "cache 71/80" in r.stderr
    rec = run("ppl", "-m", MODEL, "-f", TEXT, "--max-tokens", "120", "--cache",
              "chunked:sink_chunks=1,window_chunks=2", "--chunk-tokens", "16", "--recompute", "-t", "1")
    perplexity(rec)
    assert "cache 39/48" in rec.stderr  # 119 tokens: chunk 0 + chunks 6 and 7 (7 tokens)


def write_meta(path, rows, style):
    lines = ["# modality,round"] if style == "csv" else []
    for modality, rnd in rows:
        lines.append(f"{modality},{rnd}" if style == "csv" else json.dumps({"modality": modality, "round": rnd}))
    path.write_text("\n".join(lines) + "\n")


def modal_rows(n):
    # 20 text tokens, then rounds of 10 vision tokens each followed by 5 text tokens.
    rows = [("text", 0)] * 20
    rnd = 1
    while len(rows) < n:
        rows += [("vision", rnd)] * 10 + [("text", rnd)] * 5
        rnd += 1
    return rows[:n]


@needs_model
def test_modal_cache_with_a_meta_file(tmp_path):
    spec = "modal:text_sink=4,text_window=16,vision_rounds=2,round_tokens=10"
    base = ("ppl", "-m", MODEL, "-f", TEXT, "--max-tokens", "150", "--cache", spec)
    values = {}
    for style in ("csv", "json"):
        f = tmp_path / f"meta.{style}"
        write_meta(f, modal_rows(150), style)
        r = run(*base, "--meta", f)
        values[style] = perplexity(r)
        assert "cache 39/40" in r.stderr  # 4 + 16 text tokens + rounds 8 (10) and 9 (9 so far)
    assert values["csv"] == values["json"]
    assert values["csv"] != perplexity(run(*base))  # all text: a different cache


@needs_model
@pytest.mark.parametrize("content,words", [
    ("text,0\n" * 10, ["10 rows for", "tokens"]),
    ("text,0\npixels,1\n", ["line 2", "modality", "pixels"]),
    ("text,3\nvision,1\n", ["line 2", "must not decrease"]),
    ('{"modality": "vision", "colour": 1}\n', ["line 1", "colour"]),
    ('{"modality": \n', ["line 1", "JSON"]),
    ("text,x\n", ["line 1", "integer"]),
])
def test_bad_meta_files_are_one_clear_error(tmp_path, content, words):
    f = tmp_path / "meta.csv"
    f.write_text(content)
    assert_one_clear_error(run("ppl", "-m", MODEL, "-f", TEXT, "--max-tokens", "100", "--cache", "modal",
                               "--meta", f), *words)


@needs_model
def test_stream_with_chunks_and_chunk_tokens_errors():
    r = run("stream", "-m", MODEL, "--cache", "chunked:window_chunks=3", "--chunk-tokens", "16", "-n", "120",
            "-s", "1", "--ignore-eos")
    assert r.returncode == 0, r.stderr
    assert "generated 120" in r.stderr and "cache " in r.stderr
    assert_one_clear_error(run("ppl", "-m", MODEL, "-f", TEXT, "--cache", "sink", "--chunk-tokens", "16"),
                           "--chunk-tokens", "chunked or modal")
    assert_one_clear_error(run("ppl", "-m", MODEL, "-f", TEXT, "--cache", "chunked:window_chunks=2",
                               "--max-tokens", "100"), "chunk_tokens")


@needs_model
def test_cache_larger_than_memory_is_one_clear_error():
    r = run("ppl", "-m", MODEL, "-f", TEXT, "--cache", "sink", "--sink", "4", "--window", "1000000000")
    assert_one_clear_error(r, "1000000004 tokens", "MiB of memory", "lower the cache budget")


def write_no_rope_model(folder):
    """A random one-layer decoder without positional encoding (safetensors + config.json), vocab 512."""
    rng = random.Random(0)
    V, D, H, KV, hd, F = 512, 32, 4, 2, 8, 64
    shapes = {"model.embed_tokens.weight": (V, D), "lm_head.weight": (V, D), "model.norm.weight": (D,)}
    p = "model.layers.0."
    shapes.update({p + "input_layernorm.weight": (D,), p + "post_attention_layernorm.weight": (D,),
                   p + "self_attn.q_proj.weight": (H * hd, D), p + "self_attn.k_proj.weight": (KV * hd, D),
                   p + "self_attn.v_proj.weight": (KV * hd, D), p + "self_attn.o_proj.weight": (D, H * hd),
                   p + "mlp.gate_proj.weight": (F, D), p + "mlp.up_proj.weight": (F, D),
                   p + "mlp.down_proj.weight": (D, F)})
    header, blobs, offset = {}, [], 0
    for name, shape in shapes.items():
        count = shape[0] * (shape[1] if len(shape) > 1 else 1)
        base = 1.0 if name.endswith("norm.weight") else 0.0
        data = struct.pack(f"<{count}f", *(base + rng.uniform(-0.5, 0.5) for _ in range(count)))
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(head)) + head + b"".join(blobs))
    (folder / "config.json").write_text(json.dumps({
        "model_type": "sinklab", "vocab_size": V, "hidden_size": D, "num_hidden_layers": 1,
        "num_attention_heads": H, "num_key_value_heads": KV, "head_dim": hd, "intermediate_size": F,
        "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "position_encoding": "none"}))


@needs_model
def test_model_without_rope_refuses_shift_and_streams_with_absolute(tmp_path):
    write_no_rope_model(tmp_path)
    base = ("ppl", "-m", tmp_path, "--tokenizer", TOKENIZER, "-f", TEXT, "--max-tokens", "120",
            "--cache", "sink:sink=4,window=28")
    assert_one_clear_error(run(*base, "--positions", "shift"), "shift", "RoPE")
    r = run(*base)
    perplexity(r)
    assert "positions absolute" in r.stdout
    assert_one_clear_error(run("stream", "-m", tmp_path, "--tokenizer", TOKENIZER, "--positions", "shift",
                               "-n", "5"), "shift", "RoPE")
