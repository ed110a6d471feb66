// Parsing and validation of intervention specs (grammar in sinklab/intervene.h).
#include <algorithm>
#include <charconv>
#include <map>

#include "sinklab/intervene.h"

namespace sinklab {

namespace {

constexpr int64_t kMaxListItems = int64_t(1) << 20;

[[noreturn]] void fail(const std::string& spec, const std::string& what) {
  throw Error("ablate spec '" + spec + "': " + what);
}

int64_t parse_int(const std::string& spec, const std::string& key, std::string_view text) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size())
    fail(spec, key + " expects integers, got '" + std::string(text) + "'");
  if (v < 0) fail(spec, key + " expects non-negative integers, got " + std::string(text));
  return v;
}

// "3;5..7" -> {3, 5, 6, 7}
std::vector<int64_t> parse_list(const std::string& spec, const std::string& key, const std::string& value) {
  std::vector<int64_t> out;
  if (value.empty()) fail(spec, key + " has no value");
  size_t start = 0;
  while (start <= value.size()) {
    const size_t end = std::min(value.find(';', start), value.size());
    const std::string_view item(value.data() + start, end - start);
    if (item.empty()) fail(spec, key + " has an empty list item in '" + value + "'");
    const size_t dots = item.find("..");
    if (dots == std::string_view::npos) {
      out.push_back(parse_int(spec, key, item));
    } else {
      const int64_t a = parse_int(spec, key, item.substr(0, dots)), b = parse_int(spec, key, item.substr(dots + 2));
      if (b < a) fail(spec, key + " range '" + std::string(item) + "' is empty (write low..high)");
      if (b - a >= kMaxListItems) fail(spec, key + " range '" + std::string(item) + "' is too long");
      for (int64_t x = a; x <= b; ++x) out.push_back(x);
    }
    if (int64_t(out.size()) > kMaxListItems) fail(spec, key + " lists too many items");
    start = end + 1;
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<int> to_ints(const std::string& spec, const std::string& key, const std::vector<int64_t>& v) {
  std::vector<int> out;
  for (int64_t x : v) {
    if (x > (int64_t(1) << 30)) fail(spec, key + " value " + std::to_string(x) + " is too large");
    out.push_back(int(x));
  }
  return out;
}

struct Options {
  std::string spec;
  std::map<std::string, std::string> kv;

  bool has(const std::string& k) const { return kv.count(k) > 0; }
  std::vector<int64_t> list(const std::string& k) const { return parse_list(spec, k, kv.at(k)); }
  int single(const std::string& k) const {
    const std::vector<int64_t> v = list(k);
    if (v.size() != 1) fail(spec, k + " takes one value, got '" + kv.at(k) + "'");
    return to_ints(spec, k, v)[0];
  }
};

Options split_options(const std::string& spec, const std::string& kind, const std::string& rest,
                      const std::vector<std::string>& allowed) {
  Options o{spec, {}};
  if (rest.empty()) return o;
  std::string all;
  for (const std::string& a : allowed) all += (all.empty() ? "" : ", ") + a;
  size_t start = 0;
  while (start <= rest.size()) {
    const size_t end = std::min(rest.find(',', start), rest.size());
    const std::string item = rest.substr(start, end - start);
    const size_t eq = item.find('=');
    if (item.empty() || eq == std::string::npos || eq == 0)
      fail(spec, "expected key=value, got '" + item + "' (" + kind + " takes " + all + ")");
    const std::string key = item.substr(0, eq);
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
      fail(spec, "unknown option '" + key + "' (" + kind + " takes " + all + ")");
    if (!o.kv.emplace(key, item.substr(eq + 1)).second) fail(spec, "option '" + key + "' is given twice");
    start = end + 1;
  }
  return o;
}

}  // namespace

Intervention parse_intervention(const std::string& spec) {
  const size_t colon = spec.find(':');
  const std::string kind = spec.substr(0, colon);
  const std::string rest = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (colon != std::string::npos && rest.empty()) fail(spec, "nothing after ':'");
  Intervention iv;
  iv.spec = spec;
  if (kind == "sink") {
    const Options o = split_options(spec, kind, rest, {"keys", "layers", "heads"});
    iv.kind = InterventionKind::SinkMask;
    iv.tokens = o.has("keys") ? o.list("keys") : std::vector<int64_t>{0};
    if (o.has("layers")) iv.layers = to_ints(spec, "layers", o.list("layers"));
    if (o.has("heads")) iv.heads = to_ints(spec, "heads", o.list("heads"));
  } else if (kind == "reset") {
    const Options o = split_options(spec, kind, rest, {"layer", "tap", "dims", "tokens", "mode"});
    iv.kind = InterventionKind::Reset;
    if (o.has("layer") == o.has("tap")) fail(spec, "reset needs exactly one of layer=L (blk.L.resid_out) or tap=NAME");
    if (o.has("layer")) iv.layer = o.single("layer");
    if (o.has("tap")) {
      iv.tap = o.kv.at("tap");
      if (iv.tap.empty()) fail(spec, "tap has no value");
    }
    if (!o.has("dims")) fail(spec, "reset needs dims=D (the columns to overwrite)");
    iv.dims = o.list("dims");
    if (o.has("tokens")) iv.tokens = o.list("tokens");
    const std::string mode = o.has("mode") ? o.kv.at("mode") : "zero";
    if (mode == "zero")
      iv.mode = ResetMode::Zero;
    else if (mode == "mean")
      iv.mode = ResetMode::Mean;
    else
      fail(spec, "mode must be zero or mean, got '" + mode + "'");
  } else if (kind == "prune") {
    const Options o = split_options(spec, kind, rest, {"layer", "expert"});
    iv.kind = InterventionKind::PruneExpert;
    if (!o.has("layer") || !o.has("expert")) fail(spec, "prune needs layer=L and expert=E");
    iv.layer = o.single("layer");
    iv.experts = to_ints(spec, "expert", o.list("expert"));
  } else if (kind == "prepend") {
    const Options o = split_options(spec, kind, rest, {"token"});
    iv.kind = InterventionKind::Prepend;
    const std::string value = o.has("token") ? o.kv.at("token") : "bos";
    size_t start = 0;
    while (start <= value.size()) {
      const size_t end = std::min(value.find(';', start), value.size());
      const std::string item = value.substr(start, end - start);
      if (item == "bos")
        iv.token_ids.push_back(-1);
      else
        iv.token_ids.push_back(int32_t(std::min<int64_t>(parse_int(spec, "token", item), INT32_MAX)));
      start = end + 1;
    }
  } else {
    fail(spec, "unknown intervention '" + kind + "' (expected sink, reset, prune or prepend)");
  }
  return iv;
}

std::vector<Intervention> parse_interventions(const std::vector<std::string>& specs) {
  std::vector<Intervention> out;
  for (const std::string& s : specs) out.push_back(parse_intervention(s));
  return out;
}

int64_t tap_width(const ModelConfig& c, const std::string& name) {
  const bool moe = c.moe.n_experts > 0;
  const int64_t D = c.dim, qd = c.n_heads * c.head_dim, kvd = c.n_kv_heads * c.head_dim;
  if (name == "token_embd" || name == "output_norm") return D;
  if (name == "logits") return c.vocab;
  const std::string unknown = "tap '" + name + "' does not exist in this model";
  check(name.rfind("blk.", 0) == 0, unknown + " (docs/ARCHITECTURE.md lists the tap names)");
  const size_t dot = name.find('.', 4);
  check(dot != std::string::npos && dot > 4, unknown + " (expected blk.L.<tensor>)");
  int64_t layer = -1;
  const auto [end, ec] = std::from_chars(name.data() + 4, name.data() + dot, layer);
  check(ec == std::errc() && end == name.data() + dot, unknown + " (expected blk.L.<tensor>)");
  check(layer >= 0 && layer < c.n_layers, unknown + ": layer " + std::to_string(layer) +
                                              " is out of range (the model has layers 0.." +
                                              std::to_string(c.n_layers - 1) + ")");
  const std::string what = name.substr(dot + 1);
  if (what == "attn_norm" || what == "attn_out" || what == "resid_mid" || what == "ffn_norm" ||
      what == "ffn_out" || what == "resid_out")
    return D;
  if (what == "q" || what == "attn_ctx") return qd;
  if (what == "k" || what == "v") return kvd;
  check(what != "attn_probs", "tap '" + name + "' is a copy made for probes and cannot be edited (hide keys with sink:keys=...)");
  if (what == "ffn_act") {
    check(!moe, unknown + " (a MoE layer has no dense ffn_act)");
    return c.hidden;
  }
  if (what == "moe.router_probs") {
    check(moe, unknown + " (this model is dense, it has no router)");
    return c.moe.n_experts;
  }
  const std::string prefix = "moe.expert.", suffix = ".down_out";
  if (what.rfind(prefix, 0) == 0 && what.size() > prefix.size() + suffix.size() &&
      what.compare(what.size() - suffix.size(), suffix.size(), suffix) == 0) {
    check(moe, unknown + " (this model is dense, it has no experts)");
    const std::string e = what.substr(prefix.size(), what.size() - prefix.size() - suffix.size());
    int64_t expert = -1;
    const auto [e_end, e_ec] = std::from_chars(e.data(), e.data() + e.size(), expert);
    check(e_ec == std::errc() && e_end == e.data() + e.size(), unknown);
    check(expert >= 0 && expert < c.moe.n_experts, unknown + ": expert " + e + " is out of range (experts 0.." +
                                                       std::to_string(c.moe.n_experts - 1) + ")");
    return D;
  }
  throw Error(unknown + " (docs/ARCHITECTURE.md lists the tap names)");
}

void validate_interventions(std::span<const Intervention> list, const ModelConfig& c) {
  auto range = [](const Intervention& iv, const char* what, int64_t x, int64_t n) {
    if (x < 0 || x >= n)
      fail(iv.spec, std::string(what) + " " + std::to_string(x) + " is out of range (the model has " + what +
                        "s 0.." + std::to_string(n - 1) + ")");
  };
  for (const Intervention& iv : list) {
    switch (iv.kind) {
      case InterventionKind::SinkMask:
        for (int l : iv.layers) range(iv, "layer", l, c.n_layers);
        for (int h : iv.heads) range(iv, "head", h, c.n_heads);
        break;
      case InterventionKind::Reset: {
        if (iv.tap.empty()) range(iv, "layer", iv.layer, c.n_layers);
        const std::string name = iv.tap.empty() ? "blk." + std::to_string(iv.layer) + ".resid_out" : iv.tap;
        int64_t width = 0;
        try {
          width = tap_width(c, name);
        } catch (const Error& e) {
          fail(iv.spec, e.what());
        }
        for (int64_t d : iv.dims)
          if (d >= width)
            fail(iv.spec, "dim " + std::to_string(d) + " is out of range (tap '" + name + "' has columns 0.." +
                              std::to_string(width - 1) + ")");
        break;
      }
      case InterventionKind::PruneExpert:
        if (c.moe.n_experts == 0) fail(iv.spec, "this " + c.arch + " model is dense: it has no experts to prune");
        range(iv, "layer", iv.layer, c.n_layers);
        for (int e : iv.experts) range(iv, "expert", e, c.moe.n_experts);
        break;
      case InterventionKind::Prepend:
        for (int32_t id : iv.token_ids) {
          if (id == -1 && c.bos_id < 0) fail(iv.spec, "this model has no BOS token (give token=ID)");
          if (id != -1) range(iv, "token id", id, c.vocab);
        }
        break;
    }
  }
}

std::vector<int32_t> intervention_prefix(std::span<const Intervention> list, const ModelConfig& c) {
  validate_interventions(list, c);
  std::vector<int32_t> out;
  for (const Intervention& iv : list)
    if (iv.kind == InterventionKind::Prepend)
      for (int32_t id : iv.token_ids) out.push_back(id == -1 ? c.bos_id : id);
  return out;
}

std::string describe_interventions(std::span<const Intervention> list) {
  std::string s;
  for (const Intervention& iv : list) s += (s.empty() ? "" : " + ") + iv.spec;
  return s.empty() ? "none" : s;
}

}  // namespace sinklab
