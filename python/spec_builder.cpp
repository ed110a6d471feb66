#include "spec_builder.h"

#include <cmath>
#include <limits>
#include <set>

namespace sinklab::python {

namespace {

constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();
constexpr int64_t kIntMin = std::numeric_limits<int32_t>::min();

py::dict as_dict(py::handle obj, const std::string& name, const std::set<std::string>& allowed) {
  if (!py::isinstance<py::dict>(obj))
    throw py::type_error(name + " must be a dict or None, got " +
                         py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>());
  py::dict d = py::reinterpret_borrow<py::dict>(obj);
  for (auto item : d) {
    const std::string key = py::isinstance<py::str>(item.first) ? item.first.cast<std::string>() : "";
    if (!allowed.count(key)) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      throw py::value_error(name + " has an unknown key " + py::repr(item.first).cast<std::string>() +
                            "; allowed keys: " + list);
    }
  }
  return d;
}

// Value of an optional dict entry, or None.
py::object entry(const py::dict& d, const char* key) {
  return d.contains(key) ? py::reinterpret_borrow<py::object>(d[key]) : py::object(py::none());
}

float finite_float(py::handle obj, const std::string& name) {
  const double v = to_double(obj, name);
  if (!std::isfinite(v) || std::fabs(v) > double(std::numeric_limits<float>::max()))
    throw py::value_error(name + " must be a finite float32 value, got " + py::str(obj).cast<std::string>());
  return float(v);
}

void parse_positions(const SpecArgs& a, const ProblemShape& sh, BuiltSpec& out) {
  if (a.positions.is_none()) return;
  if (!(py::isinstance<py::tuple>(a.positions) || py::isinstance<py::list>(a.positions)) ||
      py::len(a.positions) != 2)
    throw py::type_error("positions must be a tuple (q_pos, k_pos); either may be None");
  py::sequence seq = py::reinterpret_borrow<py::sequence>(a.positions);
  auto one = [&](py::handle obj, const char* name, int64_t n, int64_t& batch_stride) -> const int32_t* {
    if (obj.is_none()) return nullptr;
    py::array_t<int32_t> p = int32_array(obj, name, out.keep);
    const int64_t len = p.shape(p.ndim() - 1);
    if (len != n)
      throw py::value_error(std::string(name) + " has " + std::to_string(len) + " positions, expected " +
                            std::to_string(n) + " (shape " + shape_str(p) + ")");
    if (p.ndim() == 2 && p.shape(0) != sh.batch && p.shape(0) != 1)
      throw py::value_error(std::string(name) + " must have shape [" + std::to_string(n) + "] or [" +
                            std::to_string(sh.batch) + ", " + std::to_string(n) + "], got " + shape_str(p));
    batch_stride = p.ndim() == 2 && p.shape(0) > 1 ? n : 0;
    return p.data();
  };
  out.spec.q_pos = one(seq[0], "positions[0] (q_pos)", sh.n_q, out.spec.q_pos_batch_stride);
  out.spec.k_pos = one(seq[1], "positions[1] (k_pos)", sh.n_k, out.spec.k_pos_batch_stride);
}

RopeStyle parse_rope_style(const std::string& s) {
  if (s == "rotate_half") return RopeStyle::RotateHalf;
  if (s == "interleaved") return RopeStyle::Interleaved;
  if (s == "none") return RopeStyle::None;
  throw py::value_error("rope['style'] must be 'rotate_half' or 'interleaved', got '" + s + "'");
}

RopeScaling parse_rope_scaling(const std::string& s) {
  if (s == "none") return RopeScaling::None;
  if (s == "linear") return RopeScaling::Linear;
  if (s == "ntk") return RopeScaling::NTK;
  if (s == "yarn") return RopeScaling::YaRN;
  if (s == "llama3") return RopeScaling::Llama3;
  throw py::value_error("rope['scaling'] must be one of 'none', 'linear', 'ntk', 'yarn', 'llama3', got '" +
                        s + "'");
}

void parse_rope(const SpecArgs& a, BuiltSpec& out) {
  if (a.rope.is_none()) return;
  const py::dict d = as_dict(a.rope, "rope",
                             {"style", "theta", "rotary_dim", "scaling", "factor", "original_context",
                              "beta_fast", "beta_slow", "attn_factor", "low_freq_factor",
                              "high_freq_factor"});
  if (!d.contains("style"))
    throw py::value_error("rope needs a 'style': 'rotate_half' or 'interleaved'");
  RopeSpec& r = out.spec.rope;
  r.style = parse_rope_style(to_string(d["style"], "rope['style']"));
  auto num = [&](const char* key, float& field) {
    if (d.contains(key)) field = finite_float(d[key], std::string("rope['") + key + "']");
  };
  auto integer = [&](const char* key, int& field) {
    if (d.contains(key)) field = int(to_int(d[key], std::string("rope['") + key + "']", 0, kIntMax));
  };
  num("theta", r.theta);
  integer("rotary_dim", r.rotary_dim);
  if (d.contains("scaling")) r.scaling = parse_rope_scaling(to_string(d["scaling"], "rope['scaling']"));
  num("factor", r.factor);
  integer("original_context", r.original_context);
  num("beta_fast", r.beta_fast);
  num("beta_slow", r.beta_slow);
  num("attn_factor", r.attn_factor);
  num("low_freq_factor", r.low_freq_factor);
  num("high_freq_factor", r.high_freq_factor);
}

void parse_prior(const SpecArgs& a, const ProblemShape& sh, BuiltSpec& out) {
  if (a.prior.is_none()) return;
  const py::dict d = as_dict(a.prior, "prior",
                             {"goat_lambda_sym", "goat_lambda_asym", "goat_base", "key_bias",
                              "alibi_slopes"});
  py::object sym = entry(d, "goat_lambda_sym"), asym = entry(d, "goat_lambda_asym");
  if (!sym.is_none() || !asym.is_none()) {
    // A missing half of the Fourier prior is zero; the given half fixes the rank.
    // (A default-constructed py::array_t is an empty array, not a null handle, so
    // presence is tracked by the Python arguments, never by the arrays.)
    const bool has_sym = !sym.is_none(), has_asym = !asym.is_none();
    py::array_t<float> s, as;
    if (has_sym) s = float32_array(sym, "prior['goat_lambda_sym']", {sh.n_kv_heads, -1}, out.keep);
    if (has_asym)
      as = float32_array(asym, "prior['goat_lambda_asym']", {sh.n_kv_heads, has_sym ? s.shape(1) : -1},
                         out.keep);
    const int64_t rank = has_sym ? s.shape(1) : as.shape(1);
    if (rank > 256) throw py::value_error("the GOAT rank (lambda columns) must be <= 256");
    auto zeros = [&]() {
      py::array_t<float> z(std::vector<ssize_t>{ssize_t(sh.n_kv_heads), ssize_t(rank)});
      std::fill(z.mutable_data(), z.mutable_data() + z.size(), 0.f);
      out.keep.push_back(z);
      return z;
    };
    if (!has_sym) s = zeros();
    if (!has_asym) as = zeros();
    out.spec.goat.rank = int(rank);
    out.spec.goat.lambda_sym = s.data();
    out.spec.goat.lambda_asym = as.data();
  }
  if (d.contains("goat_base")) out.spec.goat.base = finite_float(d["goat_base"], "prior['goat_base']");
  py::object kb = entry(d, "key_bias");
  if (!kb.is_none()) {
    TensorView v = float32_view(kb, "prior['key_bias']", 3, out.keep);
    if ((v.shape[0] != sh.batch && v.shape[0] != 1) || v.shape[1] != sh.n_kv_heads || v.shape[2] != sh.n_k)
      throw py::value_error("prior['key_bias'] must have shape [" + std::to_string(sh.batch) + " or 1, " +
                            std::to_string(sh.n_kv_heads) + ", " + std::to_string(sh.n_k) + "], got " +
                            v.shape_str());
    out.spec.key_bias = v;
    out.key_bias_batch = v.shape[0];
  }
  py::object alibi = entry(d, "alibi_slopes");
  if (!alibi.is_none())
    out.spec.alibi_slopes = float32_array(alibi, "prior['alibi_slopes']", {sh.n_heads}, out.keep).data();
}

}  // namespace

ProblemShape problem_shape(const TensorView& q, const TensorView& k) {
  ProblemShape s;
  s.batch = q.shape[0];
  s.n_heads = q.shape[1];
  s.n_q = q.shape[2];
  s.n_kv_heads = k.shape[1];
  s.n_k = k.shape[2];
  return s;
}

BuiltSpec build_spec(const SpecArgs& a, const ProblemShape& sh) {
  BuiltSpec out;
  AttnSpec& s = out.spec;
  s.causal = to_bool(a.causal, "causal");
  s.window = int(to_int(a.window, "window", kIntMin, kIntMax));
  s.sink_keys = int(to_int(a.sink_keys, "sink_keys", kIntMin, kIntMax));
  s.softcap = finite_float(a.softcap, "softcap");
  if (!a.scale.is_none()) {
    s.scale = finite_float(a.scale, "scale");
    if (!(s.scale > 0.f)) throw py::value_error("scale must be > 0 (or None for 1/sqrt(head_dim))");
  }
  s.check_finite = to_bool(a.check_finite, "check_finite");
  if (!a.sink_logits.is_none())
    s.sink_logits = float32_array(a.sink_logits, "sink_logits", {sh.n_heads}, out.keep).data();
  parse_positions(a, sh, out);
  parse_rope(a, out);
  parse_prior(a, sh, out);
  return out;
}

AttnImpl parse_impl(py::handle impl) {
  const std::string s = to_string(impl, "impl");
  if (s == "auto") return AttnImpl::Auto;
  if (s == "reference") return AttnImpl::Reference;
  if (s == "flash") return AttnImpl::Flash;
  throw py::value_error("impl must be 'auto', 'reference' or 'flash', got '" + s + "'");
}

}  // namespace sinklab::python
