// The `sinklab` Python module: attention kernels on numpy arrays and the model runtime.
#include <pybind11/pybind11.h>

#include "attention_bindings.h"

namespace py = pybind11;
using namespace sinklab::python;

namespace sinklab::python {
void register_model(py::module_& m);  // model_bindings.cpp
void register_train(py::module_& m);  // train_bindings.cpp
void register_vision(py::module_& m);  // vision_bindings.cpp
}  // namespace sinklab::python

namespace {

constexpr const char* kAttentionDoc = R"doc(
Attention with sink logits, priors, RoPE, windows and GQA (see sinklab/attention.h).

Arrays are laid out as torch's scaled_dot_product_attention:
  q [batch, n_heads, n_q, head_dim], k [batch, n_kv_heads, n_k, head_dim],
  v [batch, n_kv_heads, n_k, v_dim]; n_kv_heads divides n_heads (GQA / MQA).
float32 arrays with a unit-stride last dimension are read in place; float64 and
other layouts are copied to contiguous float32 first. Other dtypes: TypeError.

Keyword arguments:
  causal, window, sink_keys  mask: key j is visible to query i when
      (not causal or kpos_j <= qpos_i) and (j < sink_keys or window == 0 or
      |qpos_i - kpos_j| < window)
  sink_logits  [n_heads] per-head sink logit S_h (natural-log units, unscaled)
  prior        dict: goat_lambda_sym, goat_lambda_asym [n_kv_heads, R] (a missing
               one is zero), goat_base (1e4), key_bias [batch or 1, n_kv_heads, n_k]
               (may hold -inf), alibi_slopes [n_heads]
  positions    (q_pos, k_pos): int arrays [n] or [batch, n]; None entries use
               q_pos_i = i + n_k - n_q, k_pos_j = j
  rope         dict: style ('rotate_half' | 'interleaved', required), theta,
               rotary_dim, scaling ('none'|'linear'|'ntk'|'yarn'|'llama3'), factor,
               original_context, beta_fast, beta_slow, attn_factor,
               low_freq_factor, high_freq_factor
  softcap      > 0: s = softcap * tanh(s / softcap)
  scale        None = 1/sqrt(head_dim)
  impl         'auto' | 'reference' (float64 oracle) | 'flash'
  check_finite raise sinklab.Error when q, k, v or sink_logits hold NaN/Inf

Returns (all float32):
  o                          when return_lse and return_stats are False
  (o, lse)                   when return_lse is True and return_stats is False
  (o, lse, stats)            when return_stats is True (lse is always included)
with o [batch, n_heads, n_q, v_dim], lse [batch, n_heads, n_q] and stats a dict of
  mass_first_k [batch, n_heads, n_q]  attention on keys j < stats_first_k
  entropy      [batch, n_heads, n_q]  -sum p log p (the sink logit included)
  column_sums  [batch, n_heads, n_k]  attention each key receives, summed over queries
A row that sees no key gives o = 0 and lse = S_h (-inf without a sink logit).

Errors: malformed arguments raise TypeError / ValueError; what the library
rejects raises sinklab.Error (a RuntimeError).
)doc";

constexpr const char* kBackwardDoc = R"doc(
Gradients of attention. o and lse are what attention(..., return_lse=True)
returned for the same inputs and keyword arguments; d_o is dL/do.
Takes the keyword arguments of attention that define the problem (causal,
window, sink_keys, sink_logits, prior, positions, rope, softcap, scale, impl,
check_finite), not return_lse / return_stats / stats_first_k.

Returns a dict of float32 arrays: dq, dk, dv (shapes of q, k, v) and, when the
spec has them, d_sink_logits [n_heads], d_goat_lambda_sym and d_goat_lambda_asym
[n_kv_heads, R], d_key_bias (the shape of prior['key_bias']; a batch-1 bias gets
the gradient summed over the batch), d_alibi_slopes [n_heads].
)doc";

constexpr const char* kGoatFoldDoc = R"doc(
GOAT channel folding: returns (q_tilde, k_tilde) of head dim Dc + 2R + 1, with
q [batch, n_heads, n_q, Dc], k [batch, n_kv_heads, n_k, Dc], lambda_sym and
lambda_asym [n_kv_heads, R], so that attention(q_tilde, k_tilde, v, scale=1)
without a prior equals attention(q, k, v, scale=content_scale, prior=...).
content_scale None = 1/sqrt(Dc); key_bias [batch or 1, n_kv_heads, n_k] (u);
positions as in attention.
)doc";

}  // namespace

PYBIND11_MODULE(sinklab, m) {
  m.doc() = "sinklab: attention sinks, observable and controllable (attention kernels on numpy arrays)";
  m.attr("__version__") = sinklab::version();
  py::register_exception<sinklab::Error>(m, "Error", PyExc_RuntimeError);

  const py::object none = py::none();
  m.def(
      "attention",
      [](py::object q, py::object k, py::object v, py::object causal, py::object window,
         py::object sink_keys, py::object sink_logits, py::object prior, py::object positions,
         py::object rope, py::object softcap, py::object scale, py::object return_lse,
         py::object return_stats, py::object stats_first_k, py::object impl, py::object check_finite) {
        const SpecArgs args{causal, window, sink_keys, sink_logits, prior,
                            positions, rope, softcap, scale, check_finite};
        return attention(q, k, v, args, ForwardOptions{return_lse, return_stats, stats_first_k, impl});
      },
      kAttentionDoc, py::arg("q"), py::arg("k"), py::arg("v"), py::kw_only(),
      py::arg("causal") = true, py::arg("window") = 0, py::arg("sink_keys") = 0,
      py::arg("sink_logits") = none, py::arg("prior") = none, py::arg("positions") = none,
      py::arg("rope") = none, py::arg("softcap") = 0.0, py::arg("scale") = none,
      py::arg("return_lse") = false, py::arg("return_stats") = false, py::arg("stats_first_k") = 1,
      py::arg("impl") = "auto", py::arg("check_finite") = false);

  m.def(
      "attention_backward",
      [](py::object q, py::object k, py::object v, py::object o, py::object lse, py::object d_o,
         py::object causal, py::object window, py::object sink_keys, py::object sink_logits,
         py::object prior, py::object positions, py::object rope, py::object softcap,
         py::object scale, py::object impl, py::object check_finite) {
        const SpecArgs args{causal, window, sink_keys, sink_logits, prior,
                            positions, rope, softcap, scale, check_finite};
        return attention_backward(q, k, v, o, lse, d_o, args, impl);
      },
      kBackwardDoc, py::arg("q"), py::arg("k"), py::arg("v"), py::arg("o"), py::arg("lse"),
      py::arg("d_o"), py::kw_only(), py::arg("causal") = true, py::arg("window") = 0,
      py::arg("sink_keys") = 0, py::arg("sink_logits") = none, py::arg("prior") = none,
      py::arg("positions") = none, py::arg("rope") = none, py::arg("softcap") = 0.0,
      py::arg("scale") = none, py::arg("impl") = "auto", py::arg("check_finite") = false);

  m.def("goat_fold", &goat_fold, kGoatFoldDoc, py::arg("q"), py::arg("k"), py::kw_only(),
        py::arg("lambda_sym"), py::arg("lambda_asym"), py::arg("base") = 1e4,
        py::arg("key_bias") = none, py::arg("positions") = none, py::arg("content_scale") = none);

  register_model(m);
  register_train(m);
  register_vision(m);
}
