"""sinklab.Model on the real stories260K checkpoint: greedy generation matches
the golden text, logits over a sequence match token-by-token feeding, and bad
input raises Python exceptions."""
import os
import pathlib

import numpy as np
import pytest

import sinklab

SOURCE = pathlib.Path(__file__).resolve().parents[2]
ASSETS = pathlib.Path(os.environ.get("SINKLAB_ASSETS", SOURCE.parent / "shared" / "assets"))
MODEL = ASSETS / "models" / "stories260K" / "stories260K.bin"
TOKENIZER = ASSETS / "models" / "stories260K" / "tok512.bin"
GOLDEN_TEXT = ASSETS / "golden" / "stories260K_greedy200_expected.txt"
GOLDEN_IDS = ASSETS / "golden" / "stories260K_greedy200_ids.txt"

pytestmark = pytest.mark.skipif(not MODEL.exists(), reason=f"assets missing: {MODEL} (set SINKLAB_ASSETS)")


@pytest.fixture(scope="module")
def model():
    return sinklab.Model(str(MODEL), tokenizer=str(TOKENIZER))


def golden_ids():
    return [int(x) for x in GOLDEN_IDS.read_text().split()]


def test_config(model):
    c = model.config
    assert (c["arch"], c["n_layers"], c["dim"], c["n_heads"], c["n_kv_heads"]) == ("llama", 5, 64, 8, 4)
    assert (c["vocab"], c["hidden"], c["max_seq"], c["bos_id"], c["eos_id"]) == (512, 172, 512, 1, 2)
    assert c["n_params"] == 260032
    assert "architecture" in model.describe()


def test_tokenizer_finds_itself_beside_the_model():
    assert sinklab.Model(str(MODEL)).tokenize("Once upon a time") == [1, 403, 407, 261, 378]


def test_greedy_generate_reproduces_golden_text(model):
    golden = GOLDEN_TEXT.read_text()
    text = model.generate("", n=60, temperature=0)
    assert text.startswith("Once upon a time, there was a little girl named Lily.")
    assert golden.startswith(text)
    assert model.generate("", n=200, temperature=0) == golden


def test_generate_defaults_are_the_cli_defaults(model):
    import inspect as _inspect
    doc = model.generate.__doc__
    for text in ("n: int = 128", "temperature: float = 0.8", "top_k: int = 40", "top_p: float = 0.95",
                 "min_p: float = 0.05", "seed: object = None"):
        assert text in doc, doc
    # The same seed gives the CLI's text.
    import subprocess, os
    cli = os.environ.get("SINKLAB_BIN")
    if cli:
        r = subprocess.run([cli, "generate", "-m", str(MODEL), "-n", "30", "-s", "7", "--no-display-prompt"],
                           capture_output=True, text=True, check=True)
        assert r.stdout == model.generate("", n=30, seed=7)


def test_seeded_sampling_is_reproducible(model):
    kw = dict(n=40, temperature=1.0, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.1)
    assert model.generate("Once upon a time", seed=5, **kw) == model.generate("Once upon a time", seed=5, **kw)
    texts = {model.generate("Once upon a time", seed=s, **kw) for s in range(6)}
    assert len(texts) > 1


def test_tokenize_detokenize_round_trip(model):
    text = "Lily saw a big red ball. She was happy!"
    ids = model.tokenize(text)
    assert ids[0] == 1 and model.tokenize(text, add_bos=False) == ids[1:]
    assert model.detokenize(ids) == text
    assert model.detokenize(np.array(ids, dtype=np.int64)) == text
    assert model.detokenize(golden_ids()) == GOLDEN_TEXT.read_text()


def test_logits_rows_equal_token_by_token_feeding(model):
    ids = [1] + golden_ids()[:39]
    full = model.logits(ids)
    assert full.shape == (len(ids), 512) and full.dtype == np.float32
    assert np.all(np.isfinite(full))
    # Row i is the last row of a fresh run over ids[:i+1]; that run's earlier
    # rows are themselves checked by the shorter prefixes.
    for i in range(len(ids)):
        prefix = model.logits(ids[: i + 1])
        np.testing.assert_allclose(full[i], prefix[-1], rtol=0, atol=1e-4)
    # Greedy argmax of each row follows the golden continuation.
    assert [int(x) for x in full.argmax(axis=1)[:-1]] == golden_ids()[: len(ids) - 1]


def test_mmap_false_copies_weights_with_identical_logits(model):
    copied = sinklab.Model(str(MODEL), tokenizer=str(TOKENIZER), mmap=False)
    ids = [1] + golden_ids()[:19]
    np.testing.assert_array_equal(copied.logits(ids), model.logits(ids))


def test_errors_become_python_exceptions(model, tmp_path):
    with pytest.raises(sinklab.Error, match="nope"):
        sinklab.Model(str(tmp_path / "nope.bin"))
    with pytest.raises(sinklab.Error, match="outside the vocabulary"):
        model.logits([1, 9999])
    with pytest.raises(ValueError, match="must not be empty"):
        model.logits([])
    with pytest.raises(TypeError, match="integer"):
        model.logits([1.5, 2.5])
    with pytest.raises(ValueError, match="shape"):
        model.logits(np.ones((1, 1, 2), dtype=np.int32))  # neither a sequence nor a batch
    with pytest.raises(sinklab.Error, match="temperature"):
        model.generate("x", temperature=-1.0)
    with pytest.raises(sinklab.Error, match="top-p"):
        model.generate("x", top_p=0.0)
    with pytest.raises(TypeError):
        model.tokenize(42)
    with pytest.raises(ValueError, match="dtype"):
        sinklab.Model(str(MODEL), dtype="f16")
    with pytest.raises(sinklab.Error, match="context"):
        model.generate("Once upon a time there was a girl", n=5, context=4)
    # A checkpoint with no tokenizer beside it: loading works, tokenizing says why not.
    lonely = tmp_path / "model.bin"
    lonely.write_bytes(MODEL.read_bytes())
    bare = sinklab.Model(str(lonely))
    assert bare.logits([1, 2, 3]).shape == (3, 512)
    with pytest.raises(sinklab.Error, match="no tokenizer"):
        bare.tokenize("hello")


def test_perplexity_matches_logits_and_defaults_cache_sizes():
    root = __import__("pathlib").Path(__file__).resolve().parents[2]
    m = sinklab.Model(str(root / "models" / "default"))
    ids = m.tokenize("Once upon a time there was a little fox who lived by the river. " * 6)[:120]
    logits = m.logits(ids).astype(np.float64)
    logp = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True)) - logits.max(1, keepdims=True)
    want = -np.mean([logp[i, ids[i + 1]] for i in range(len(ids) - 1)])
    r = m.perplexity(ids, token_nll=True)
    assert r["cache"] == "dense:limit=256" and r["windows"] == 1 and r["predicted"] == len(ids) - 1
    assert abs(r["nll"] - want) < 1e-4
    np.testing.assert_allclose(r["token_nll"].mean(), want, atol=1e-4)
    assert m.perplexity(ids, cache="sink")["cache"] == "sink:sink=4,window=252"
    assert m.perplexity(ids, cache="window", context=64)["cache"] == "window:window=64"
    same = m.perplexity(ids, cache="sink:window=60", kl_base="sink:window=60")
    assert same["kl"] == 0.0
    assert m.perplexity(ids, context=50)["windows"] == 3
    with pytest.raises(ValueError, match="at least 2"):
        m.perplexity(ids[:1])
    with pytest.raises(sinklab.Error, match="unknown cache policy"):
        m.perplexity(ids, cache="nope")


def test_model_by_repo_id_from_the_local_cache(tmp_path, monkeypatch):
    root = pathlib.Path(__file__).resolve().parents[2] / "models" / "default"
    snap = tmp_path / "models--acme--tiny" / "snapshots" / "c0ffee"
    snap.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (snap / name).symlink_to(root / name)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    m = sinklab.Model("acme/tiny")
    assert m.tokenize("hello") == sinklab.Model(str(root)).tokenize("hello")
    with pytest.raises(sinklab.Error, match="looked in"):
        sinklab.Model("acme/absent")


def test_logits_of_a_batch_equal_each_sequence_alone(model):
    a = model.tokenize("Once upon a time there was a dog")
    b = model.tokenize("Lily saw a big red ball")
    n = min(len(a), len(b))
    two_d = model.logits(np.array([a[:n], b[:n]], dtype=np.int64))
    assert two_d.shape == (2, n, model.config["vocab"])
    np.testing.assert_array_equal(two_d[0], model.logits(a[:n]))
    np.testing.assert_array_equal(two_d[1], model.logits(b[:n]))
    ragged = model.logits([a, b])
    assert isinstance(ragged, list) and [r.shape[0] for r in ragged] == [len(a), len(b)]
    np.testing.assert_array_equal(ragged[1], model.logits(b))
    assert model.logits(a).shape == (len(a), model.config["vocab"])
    with pytest.raises(ValueError, match=r"ids\[1\]"):
        model.logits([a, []])
