#include "attention_bindings.h"

namespace sinklab::python {

namespace {

// Output array shapes.
std::vector<int64_t> dims4(int64_t a, int64_t b, int64_t c, int64_t d) { return {a, b, c, d}; }

}  // namespace

py::object attention(py::handle q, py::handle k, py::handle v, const SpecArgs& args,
                     const ForwardOptions& opts) {
  KeepAlive keep;
  const TensorView qv = float32_view(q, "q", 4, keep);
  const TensorView kv = float32_view(k, "k", 4, keep);
  const TensorView vv = float32_view(v, "v", 4, keep);
  const ProblemShape sh = problem_shape(qv, kv);
  BuiltSpec built = build_spec(args, sh);
  const bool want_lse = to_bool(opts.return_lse, "return_lse");
  const bool want_stats = to_bool(opts.return_stats, "return_stats");
  const AttnImpl impl = parse_impl(opts.impl);

  py::array_t<float> o = nan_array(dims4(sh.batch, sh.n_heads, sh.n_q, vv.shape[3]));
  py::array_t<float> lse, mass, entropy, columns;
  TensorView o_view = writable_view(o), lse_view;
  if (want_lse || want_stats) {
    lse = nan_array({sh.batch, sh.n_heads, sh.n_q});
    lse_view = writable_view(lse);
  }
  AttnStats stats;
  if (want_stats) {
    stats.first_k = int(to_int(opts.stats_first_k, "stats_first_k", 0, std::numeric_limits<int32_t>::max()));
    mass = nan_array({sh.batch, sh.n_heads, sh.n_q});
    entropy = nan_array({sh.batch, sh.n_heads, sh.n_q});
    columns = nan_array({sh.batch, sh.n_heads, sh.n_k});
    stats.mass_first_k = writable_view(mass);
    stats.entropy = writable_view(entropy);
    stats.column_sums = writable_view(columns);
  }
  {
    py::gil_scoped_release unlocked;
    attention_forward(built.spec, qv, kv, vv, o_view, lse_view, want_stats ? &stats : nullptr, impl);
  }
  if (want_stats) {
    py::dict s;
    s["mass_first_k"] = mass;
    s["entropy"] = entropy;
    s["column_sums"] = columns;
    return py::make_tuple(o, lse, s);
  }
  if (want_lse) return py::make_tuple(o, lse);
  return o;
}

py::dict attention_backward(py::handle q, py::handle k, py::handle v, py::handle o, py::handle lse,
                            py::handle d_o, const SpecArgs& args, py::handle impl_name) {
  KeepAlive keep;
  const TensorView qv = float32_view(q, "q", 4, keep);
  const TensorView kv = float32_view(k, "k", 4, keep);
  const TensorView vv = float32_view(v, "v", 4, keep);
  const TensorView ov = float32_view(o, "o", 4, keep);
  const TensorView lv = float32_view(lse, "lse", 3, keep);
  const TensorView dov = float32_view(d_o, "d_o", 4, keep);
  const ProblemShape sh = problem_shape(qv, kv);
  BuiltSpec built = build_spec(args, sh);
  const AttnSpec& spec = built.spec;
  const AttnImpl impl = parse_impl(impl_name);

  py::dict out;
  py::array_t<float> dq = nan_array(dims4(sh.batch, sh.n_heads, sh.n_q, qv.shape[3]));
  py::array_t<float> dk = nan_array(dims4(sh.batch, sh.n_kv_heads, sh.n_k, kv.shape[3]));
  py::array_t<float> dv = nan_array(dims4(sh.batch, sh.n_kv_heads, sh.n_k, vv.shape[3]));
  AttnGrads g;
  g.dq = writable_view(dq);
  g.dk = writable_view(dk);
  g.dv = writable_view(dv);
  out["dq"] = dq;
  out["dk"] = dk;
  out["dv"] = dv;
  py::array_t<float> d_sink, d_sym, d_asym, d_bias, d_alibi;
  if (spec.sink_logits) {
    d_sink = nan_array({sh.n_heads});
    g.d_sink_logits = d_sink.mutable_data();
  }
  if (spec.goat.rank > 0) {
    d_sym = nan_array({sh.n_kv_heads, spec.goat.rank});
    d_asym = nan_array({sh.n_kv_heads, spec.goat.rank});
    g.d_lambda_sym = d_sym.mutable_data();
    g.d_lambda_asym = d_asym.mutable_data();
  }
  if (!spec.key_bias.empty()) {
    d_bias = nan_array({sh.batch, sh.n_kv_heads, sh.n_k});
    g.d_key_bias = writable_view(d_bias);
  }
  if (spec.alibi_slopes) {
    d_alibi = nan_array({sh.n_heads});
    g.d_alibi_slopes = d_alibi.mutable_data();
  }
  {
    py::gil_scoped_release unlocked;
    attention_backward(spec, qv, kv, vv, ov, lv, dov, g, impl);
  }
  if (spec.sink_logits) out["d_sink_logits"] = d_sink;
  if (spec.goat.rank > 0) {
    out["d_goat_lambda_sym"] = d_sym;
    out["d_goat_lambda_asym"] = d_asym;
  }
  if (!spec.key_bias.empty()) {
    // A key_bias broadcast over the batch gets the gradient summed over the batch.
    if (built.key_bias_batch == 1 && sh.batch > 1)
      out["d_key_bias"] = d_bias.attr("sum")(py::arg("axis") = 0, py::arg("keepdims") = true);
    else
      out["d_key_bias"] = d_bias;
  }
  if (spec.alibi_slopes) out["d_alibi_slopes"] = d_alibi;
  return out;
}

py::tuple goat_fold(py::handle q, py::handle k, py::handle lambda_sym, py::handle lambda_asym,
                    py::handle base, py::handle key_bias, py::handle positions,
                    py::handle content_scale) {
  KeepAlive keep;
  const TensorView qv = float32_view(q, "q", 4, keep);
  const TensorView kv = float32_view(k, "k", 4, keep);
  const ProblemShape sh = problem_shape(qv, kv);
  if (lambda_sym.is_none() && lambda_asym.is_none())
    throw py::value_error("goat_fold needs lambda_sym and/or lambda_asym ([n_kv_heads, rank])");
  SpecArgs args;
  py::dict prior;
  prior["goat_lambda_sym"] = lambda_sym;
  prior["goat_lambda_asym"] = lambda_asym;
  prior["goat_base"] = base;
  prior["key_bias"] = key_bias;
  args.prior = prior;
  args.positions = py::reinterpret_borrow<py::object>(positions);
  BuiltSpec built = build_spec(args, sh);
  float scale = 0.f;
  if (!content_scale.is_none()) {
    scale = float(to_double(content_scale, "content_scale"));
    if (!(scale > 0.f) || !std::isfinite(scale))
      throw py::value_error("content_scale must be finite and > 0 (or None for 1/sqrt(head_dim))");
  }
  const int64_t folded_dim = qv.shape[3] + 2 * built.spec.goat.rank + 1;
  py::array_t<float> q_out = nan_array(dims4(sh.batch, sh.n_heads, sh.n_q, folded_dim));
  py::array_t<float> k_out = nan_array(dims4(sh.batch, sh.n_kv_heads, sh.n_k, folded_dim));
  const TensorView qo = writable_view(q_out), ko = writable_view(k_out);
#ifdef SINKLAB_HAVE_GOAT_FOLD
  {
    py::gil_scoped_release unlocked;
    sinklab::goat_fold(built.spec.goat, qv, kv, built.spec.key_bias, built.spec, scale, qo, ko);
  }
#else
  (void)qo;
  (void)ko;
  throw Error("goat_fold: not available in this build (the library does not define sinklab::goat_fold)");
#endif
  return py::make_tuple(q_out, k_out);
}

}  // namespace sinklab::python
