"""Bad input raises TypeError / ValueError (Python glue) or sinklab.Error (the
library) with a message naming the problem; nothing crashes."""
import numpy as np
import pytest

import sinklab


def inputs(b=1, h=2, g=1, n_q=3, n_k=4, d=8):
    r = np.random.default_rng(7)
    return (r.standard_normal((b, h, n_q, d)).astype(np.float32),
            r.standard_normal((b, g, n_k, d)).astype(np.float32),
            r.standard_normal((b, g, n_k, d)).astype(np.float32))


def test_error_type():
    assert issubclass(sinklab.Error, RuntimeError)


@pytest.mark.parametrize("bad, exc, message", [
    (None, TypeError, "q must be a numpy array"),
    ([[1.0]], TypeError, "q must be a numpy array"),
    (np.zeros((1, 2, 3, 8), np.int32), TypeError, "float32 or float64"),
    (np.zeros((1, 2, 3, 8), np.float16), TypeError, "float32 or float64"),
    (np.zeros((1, 2, 3, 8), np.complex64), TypeError, "float32 or float64"),
    (np.zeros((2, 3, 8), np.float32), ValueError, "q must have 4 dimensions"),
    (np.zeros((1, 2, 0, 8), np.float32), ValueError, "q must not be empty"),
    (np.zeros((1, 2, 3, 0), np.float32), ValueError, "q must not be empty"),
])
def test_bad_q(bad, exc, message):
    _, k, v = inputs()
    with pytest.raises(exc, match=message):
        sinklab.attention(bad, k, v, impl="reference")


@pytest.mark.parametrize("k_shape, v_shape, message", [
    ((1, 1, 4, 7), (1, 1, 4, 8), "head_dim"),          # k head_dim != q head_dim
    ((2, 1, 4, 8), (2, 1, 4, 8), "batch"),             # batch mismatch
    ((1, 3, 4, 8), (1, 3, 4, 8), "must divide"),       # 3 kv heads for 2 heads
    ((1, 1, 4, 8), (1, 1, 5, 8), "must match k"),      # v keys != k keys
    ((1, 1, 4, 300), (1, 1, 4, 8), "head_dim"),
])
def test_mismatched_shapes_raise_sinklab_error(k_shape, v_shape, message):
    q, _, _ = inputs()
    if k_shape[3] == 300:
        q = np.zeros((1, 2, 3, 300), np.float32)
    with pytest.raises(sinklab.Error, match=message):
        sinklab.attention(q, np.zeros(k_shape, np.float32), np.zeros(v_shape, np.float32), impl="reference")


@pytest.mark.parametrize("kwargs, exc, message", [
    (dict(positions=(np.arange(5), None)), ValueError, r"positions\[0\].*has 5 positions, expected 3"),
    (dict(positions=(None, np.arange(3))), ValueError, r"positions\[1\].*expected 4"),
    (dict(positions=(np.zeros((3, 3), np.int32), None)), ValueError, "must have shape"),
    (dict(positions=(np.zeros(3, np.float32), None)), TypeError, "integer array"),
    (dict(positions=(np.array([0, 1, 2**40]), None)), ValueError, "int32"),
    (dict(positions=np.arange(3)), TypeError, "tuple"),
    (dict(positions=(None,)), TypeError, "tuple"),
    (dict(sink_logits=np.zeros(3, np.float32)), ValueError, r"sink_logits must have shape \[2\]"),
    (dict(sink_logits="abc"), TypeError, "sink_logits"),
    (dict(prior={"goat_lambda": np.zeros((1, 2))}), ValueError, "unknown key 'goat_lambda'"),
    (dict(prior=[1, 2]), TypeError, "prior must be a dict"),
    (dict(prior={"goat_lambda_sym": np.zeros((2, 2))}), ValueError, r"goat_lambda_sym'\] must have shape"),
    (dict(prior={"key_bias": np.zeros((1, 1, 5), np.float32)}), ValueError, "key_bias"),
    (dict(prior={"key_bias": np.zeros((1, 4), np.float32)}), ValueError, "3 dimensions"),
    (dict(prior={"alibi_slopes": np.zeros(1)}), ValueError, "alibi_slopes"),
    (dict(prior={"goat_lambda_sym": np.zeros((1, 2)), "goat_base": "x"}), TypeError, "goat_base"),
    (dict(rope={"theta": 1e4}), ValueError, "style"),
    (dict(rope={"style": "sideways"}), ValueError, "rotate_half"),
    (dict(rope={"style": "rotate_half", "scaling": "magic"}), ValueError, "scaling"),
    (dict(rope={"style": "rotate_half", "rotary_dim": 1.5}), TypeError, "rotary_dim"),
    (dict(rope={"style": "rotate_half", "thetta": 1.0}), ValueError, "unknown key 'thetta'"),
    (dict(rope="rotate_half"), TypeError, "rope must be a dict"),
    (dict(window=1.5), TypeError, "window must be an int"),
    (dict(window=2**40), ValueError, "window must be in"),
    (dict(causal="yes"), TypeError, "causal must be a bool"),
    (dict(softcap=float("nan")), ValueError, "softcap"),
    (dict(scale=0.0), ValueError, "scale must be > 0"),
    (dict(scale=-1.0), ValueError, "scale must be > 0"),
    (dict(impl="fast"), ValueError, "impl must be"),
    (dict(impl=None), TypeError, "impl must be a str"),
    (dict(return_stats=True, stats_first_k=-1), ValueError, "stats_first_k"),
])
def test_bad_keyword_arguments(kwargs, exc, message):
    q, k, v = inputs()
    kwargs.setdefault("impl", "reference")
    with pytest.raises(exc, match=message):
        sinklab.attention(q, k, v, **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(window=-1), "window must be >= 0"),
    (dict(sink_keys=-2), "sink_keys must be >= 0"),
    (dict(softcap=-1.0), "softcap"),
    (dict(rope={"style": "rotate_half", "rotary_dim": 3}), "rotary_dim"),
    (dict(rope={"style": "rotate_half", "rotary_dim": 10}), "rotary_dim"),
    (dict(rope={"style": "interleaved", "scaling": "yarn", "factor": 4.0}), "original_context"),
    (dict(rope={"style": "interleaved", "theta": 0.5}), "theta"),
    (dict(prior={"goat_lambda_sym": np.zeros((1, 2)), "goat_base": 1.0}), "base"),
])
def test_values_the_library_rejects(kwargs, message):
    q, k, v = inputs()
    with pytest.raises(sinklab.Error, match=message):
        sinklab.attention(q, k, v, impl="reference", **kwargs)


def test_check_finite():
    q, k, v = inputs()
    k[0, 0, 2, 5] = np.nan
    with pytest.raises(sinklab.Error, match=r"k holds a non-finite value at \[0, 0, 2, 5\]"):
        sinklab.attention(q, k, v, impl="reference", check_finite=True)
    with pytest.raises(sinklab.Error, match="sink_logits"):
        q, k, v = inputs()
        sinklab.attention(q, k, v, impl="reference", check_finite=True,
                          sink_logits=np.array([np.inf, 0], np.float32))


def test_unknown_keyword_is_a_type_error():
    q, k, v = inputs()
    with pytest.raises(TypeError):
        sinklab.attention(q, k, v, windw=3)
    with pytest.raises(TypeError):
        sinklab.attention(q, k, v, True)  # keyword-only options


def test_backward_bad_input():
    q, k, v = inputs()
    o, lse = sinklab.attention(q, k, v, impl="reference", return_lse=True)
    with pytest.raises(ValueError, match="lse must have 3 dimensions"):
        sinklab.attention_backward(q, k, v, o, o, o, impl="reference")
    with pytest.raises(sinklab.Error, match="d_o"):
        sinklab.attention_backward(q, k, v, o, lse, o[:, :, :2], impl="reference")
    with pytest.raises(sinklab.Error, match="lse"):
        sinklab.attention_backward(q, k, v, o, lse[:, :1], o, impl="reference")
    with pytest.raises(TypeError):
        sinklab.attention_backward(q, k, v, o, lse, o, return_lse=True)


def test_goat_fold_bad_input():
    q, k, _ = inputs()
    with pytest.raises(ValueError, match="lambda_sym"):
        sinklab.goat_fold(q, k, lambda_sym=None, lambda_asym=None)
    with pytest.raises(ValueError, match="goat_lambda_sym"):
        sinklab.goat_fold(q, k, lambda_sym=np.zeros((3, 2)), lambda_asym=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="content_scale"):
        sinklab.goat_fold(q, k, lambda_sym=np.zeros((1, 2)), lambda_asym=np.zeros((1, 2)), content_scale=-1.0)
    with pytest.raises(TypeError):
        sinklab.goat_fold(q, k)  # lambdas are required keywords


def test_library_errors_keep_working_afterwards():
    q, k, v = inputs()
    for _ in range(3):
        with pytest.raises(sinklab.Error):
            sinklab.attention(q, k, v, impl="reference", window=-1)
    assert np.isfinite(sinklab.attention(q, k, v, impl="reference")).all()


# Objects made with __new__ (no __init__) raise TypeError instead of crashing.
@pytest.mark.parametrize("code", [
    "sinklab.Model.__new__(sinklab.Model).config",
    "sinklab.Model.__new__(sinklab.Model).tokenize('a')",
    "repr(sinklab.Model.__new__(sinklab.Model))",
    "sinklab.Session.__new__(sinklab.Session).feed([1])",
    "sinklab.Session.__new__(sinklab.Session).n_past",
    "sinklab.Session(sinklab.Model.__new__(sinklab.Model))",
    "sinklab.TrainModel.__new__(sinklab.TrainModel).params()",
    "sinklab.TrainModel.__new__(sinklab.TrainModel).config",
])
def test_uninitialised_objects_raise_type_error(code):
    with pytest.raises(TypeError, match="never initialised"):
        eval(code)


def test_session_needs_a_model():
    with pytest.raises(TypeError, match="model must be a sinklab.Model"):
        sinklab.Session(3)


def test_embedded_nul_in_a_path_is_refused(tmp_path):
    with pytest.raises(ValueError, match="NUL"):
        sinklab.Model(str(tmp_path) + "\x00junk")


def test_big_endian_arrays_are_converted_not_misread():
    q, k, v = inputs()
    want = sinklab.attention(q, k, v, impl="reference")[0]
    got = sinklab.attention(q.astype(">f4"), k.astype(">f4"), v.astype(">f4"), impl="reference")[0]
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=0, atol=0)
    got64 = sinklab.attention(q.astype(">f8"), k.astype(">f8"), v.astype(">f8"), impl="reference")[0]
    np.testing.assert_allclose(got64, want, rtol=1e-6)


DEFAULT_MODEL = __import__("pathlib").Path(__file__).resolve().parents[2] / "models" / "default"


@pytest.mark.parametrize("call", [
    lambda m, s, ids: s.feed(ids),
    lambda m, s, ids: sinklab.sink_scores(m, ids),
    lambda m, s, ids: sinklab.propagation(m, ids),
    lambda m, s, ids: sinklab.massive_activations(m, ids),
    lambda m, s, ids: m.detokenize(ids),
])
@pytest.mark.parametrize("ids, exc, message", [
    (None, TypeError, "got NoneType"),
    ("hello", TypeError, "got str"),
    ((i for i in [1, 2]), TypeError, "got generator"),
    ([1.5, 2.0], TypeError, "integer array"),
    ([[1, 2]], ValueError, "one-dimensional"),
    ([2 ** 40], ValueError, "does not fit in int32"),
])
def test_token_ids_are_checked_the_same_everywhere(call, ids, exc, message):
    m = sinklab.Model(str(DEFAULT_MODEL))
    s = sinklab.Session(m)
    with pytest.raises(exc, match=message):
        call(m, s, ids)
