// sinklab.Model: load a checkpoint, tokenize, run logits over a sequence and
// generate text from Python.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "checked_self.h"
#include "numpy_views.h"
#include "sinklab/intervene.h"
#include "session_taps.h"
#include "sinklab/perplexity.h"
#include "sinklab/model.h"
#include "sinklab/probe.h"

#include <limits>
#include <nlohmann/json.hpp>

namespace sinklab::python {

namespace {

std::vector<std::string> ablate_specs(py::handle ablate);
py::object json_to_python(const nlohmann::json& j);

constexpr const char* kModelDoc = R"doc(
A model loaded from a llama2.c checkpoint, a GGUF file, or a safetensors file or
folder with config.json.

Model(path, tokenizer=None, dtype='native', mmap=True)
  tokenizer  tokenizer file (tokenizer.json or llama2.c tokenizer.bin); None looks
             beside the model
  dtype      'native' keeps every matrix in its stored type (f16 and quantized GGUF types are
             computed without dequantising; memory ~ the file); 'f32' or 'bf16' converts
             matrices stored in other types to that one at load
  mmap       True: f32/bf16 matrices are views of the memory-mapped file; False:
             copied into process memory (the CLI's --no-mmap)

Errors from the library (missing file, bad tensor, bad token id, ...) raise
sinklab.Error (a RuntimeError); wrong argument types raise TypeError, bad values
ValueError.
)doc";

constexpr const char* kGenerateDoc = R"doc(
Generates up to n tokens after the prompt and returns the generated text (not the
prompt), with the same decode loop and defaults as `sinklab generate`: n=128,
temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, no repetition penalty, and a
random seed unless one is given. temperature=0 is greedy (argmax); top_k=0,
top_p=1, min_p=0 and repeat_penalty=1 switch those filters off. Stops early at the
end-of-sequence token or when the context (context=0: the model's training
context) is full; n=-1 runs until then.
)doc";

// A float default as the decimal it was written as (0.8, not 0.800000011920929).
double shortest(float v) { return std::stod(std::to_string(v)); }

constexpr const char* kAddTapDoc = R"doc(
Installs fn(name, array, layer) on every tensor whose name matches pattern (a tap
name, or a prefix ending in '*'). array is a float32 [rows, cols] copy of the
tensor; edit it in place or return an array of the same shape, and the model
continues with it. Returns an id for remove_tap.
)doc";

class PyModel {
 public:
  PyModel(const std::string& path, py::object tokenizer, const std::string& dtype, bool mmap) {
    LoadOptions opts;
    opts.mmap = mmap;
    // A path with an embedded NUL would be cut there by the file system calls.
    if (path.find('\0') != std::string::npos) throw py::value_error("path contains a NUL character");
    if (!tokenizer.is_none()) opts.tokenizer_path = to_string(tokenizer, "tokenizer");
    if (opts.tokenizer_path.find('\0') != std::string::npos)
      throw py::value_error("tokenizer path contains a NUL character");
    if (dtype != "native" && dtype != "f32" && dtype != "bf16")
      throw py::value_error("dtype must be 'native', 'f32' or 'bf16', got '" + dtype + "'");
    opts.keep_quantized = dtype == "native";
    opts.weight_dtype = opts.keep_quantized ? DType::F32 : dtype_from_name(dtype);
    py::gil_scoped_release unlocked;
    model_ = Model::load(resolve_model_source(path), opts);
  }

  std::vector<int32_t> tokenize(py::handle text, bool add_bos) const {
    std::string bytes;
    if (py::isinstance<py::bytes>(text))
      bytes = text.cast<std::string>();
    else if (py::isinstance<py::str>(text))
      bytes = text.cast<std::string>();
    else
      throw py::type_error("text must be str or bytes");
    return tokenizer().encode(bytes, add_bos);
  }

  py::str detokenize(py::handle ids) const {
    const std::vector<int32_t> v = token_ids(ids, "ids", /*allow_empty=*/true);
    const std::string bytes = tokenizer().decode(v);
    PyObject* s = PyUnicode_DecodeUTF8(bytes.data(), Py_ssize_t(bytes.size()), "replace");
    if (!s) throw py::error_already_set();
    return py::reinterpret_steal<py::str>(s);
  }

  // One sequence -> [n, vocab]; a 2-D array -> [batch, n, vocab]; a list of
  // sequences (ragged allowed) -> a list of [n_i, vocab] arrays. Each sequence
  // runs from a fresh cache; one session (sized for the longest) serves all.
  py::object logits(py::handle ids) const {
    std::vector<std::vector<int32_t>> batch;
    bool as_3d = false, as_list = false;
    if (py::isinstance<py::array>(ids) && py::reinterpret_borrow<py::array>(ids).ndim() == 2) {
      const py::array a = py::reinterpret_borrow<py::array>(ids);
      if (a.shape(0) == 0 || a.shape(1) == 0) throw py::value_error("ids must not be empty");
      for (ssize_t b = 0; b < a.shape(0); ++b) batch.push_back(token_ids(ids[py::int_(b)], "ids[" + std::to_string(b) + "]"));
      as_3d = true;
    } else if (py::isinstance<py::list>(ids) || py::isinstance<py::tuple>(ids)) {
      const py::sequence seq = py::reinterpret_borrow<py::sequence>(ids);
      if (seq.size() > 0 && !py::isinstance<py::int_>(seq[0]) && py::hasattr(seq[0], "__len__")) {
        for (size_t b = 0; b < seq.size(); ++b) batch.push_back(token_ids(seq[b], "ids[" + std::to_string(b) + "]"));
        as_list = true;
      }
    }
    if (batch.empty()) batch.push_back(token_ids(ids, "ids"));
    const int64_t vocab = model_->config().vocab;
    size_t longest = 0;
    for (const auto& v : batch) longest = std::max(longest, v.size());
    std::vector<std::vector<float>> rows(batch.size());
    {
      py::gil_scoped_release unlocked;
      SessionOptions so;
      so.context = std::max<int64_t>(int64_t(longest), default_context());
      Session session(model_, so);
      for (size_t b = 0; b < batch.size(); ++b) {
        session.reset();
        session.feed(batch[b], &rows[b]);
      }
    }
    auto array_of = [&](size_t b) {
      py::array_t<float> out(std::vector<ssize_t>{ssize_t(batch[b].size()), ssize_t(vocab)});
      std::copy(rows[b].begin(), rows[b].end(), out.mutable_data());
      return out;
    };
    if (as_3d) {
      py::array_t<float> out(std::vector<ssize_t>{ssize_t(batch.size()), ssize_t(longest), ssize_t(vocab)});
      for (size_t b = 0; b < batch.size(); ++b)
        std::copy(rows[b].begin(), rows[b].end(), out.mutable_data() + b * longest * size_t(vocab));
      return out;
    }
    if (!as_list) return array_of(0);
    py::list out;
    for (size_t b = 0; b < batch.size(); ++b) out.append(array_of(b));
    return out;
  }

  // The library's perplexity loop (sinklab/perplexity.h) over ids, as a dict.
  py::object perplexity(py::handle ids, const std::string& cache, const std::string& positions, bool recompute,
                        const std::string& kl_base, py::handle ablate, int64_t context, bool token_nll) const {
    const std::vector<int32_t> v = token_ids(ids, "ids");
    if (v.size() < 2) throw py::value_error("ids must hold at least 2 tokens");
    if (context < 0) throw py::value_error("context must be >= 0");
    PerplexityOptions o;
    o.cache = cache;
    o.positions = positions;
    o.recompute = recompute;
    o.kl_base = kl_base;
    o.ablate = ablate_specs(ablate);
    o.context = context;
    o.keep_token_nll = token_nll;
    PerplexityResult r;
    {
      py::gil_scoped_release unlocked;
      r = run_perplexity(model_, v, {}, o);
    }
    py::dict d = json_to_python(perplexity_json(r));
    if (token_nll) {
      py::array_t<float> a(ssize_t(r.token_nll.size()));
      std::copy(r.token_nll.begin(), r.token_nll.end(), a.mutable_data());
      d["token_nll"] = a;
    }
    return d;
  }

  py::str generate(py::handle prompt, int64_t n, float temperature, int top_k, float top_p, float min_p,
                   float repeat_penalty, int repeat_last_n, py::object seed, bool add_bos, int64_t context) const {
    if (n < -1) throw py::value_error("n must be >= 0 (or -1: until EOS or a full context)");
    if (context < 0) throw py::value_error("context must be >= 0");
    GenerateOptions o;
    o.max_tokens = n;
    o.temperature = temperature;
    o.top_k = top_k;
    o.top_p = top_p;
    o.min_p = min_p;
    o.repeat_penalty = repeat_penalty;
    o.repeat_last_n = repeat_last_n;
    o.seed = seed.is_none() ? -1 : to_int(seed, "seed", 0, std::numeric_limits<int64_t>::max());
    const std::vector<int32_t> ids = tokenize(prompt, add_bos);
    if (ids.empty()) throw py::value_error("the prompt is empty and add_bos is False: nothing to start from");
    std::string text;
    {
      py::gil_scoped_release unlocked;
      SessionOptions sess;
      sess.context = context;
      Session session(model_, sess);
      StreamDecoder decoder(tokenizer());
      for (int32_t id : ids) decoder.push(id);  // the prompt is not returned, but sets the decoder's state
      generate_tokens(session, ids, o, [&](int32_t id) {
        text += decoder.push(id);
        return true;
      });
      text += decoder.flush();
    }
    return py::str(text);
  }

  py::dict config() const {
    const ModelConfig& c = model_->config();
    py::dict d;
    d["arch"] = c.arch;
    d["format"] = model_->format();
    d["path"] = model_->path();
    d["vocab"] = c.vocab;
    d["dim"] = c.dim;
    d["n_layers"] = c.n_layers;
    d["n_heads"] = c.n_heads;
    d["n_kv_heads"] = c.n_kv_heads;
    d["head_dim"] = c.head_dim;
    d["hidden"] = c.hidden;
    d["max_seq"] = c.max_seq;
    d["norm_eps"] = c.norm_eps;
    d["rope_theta"] = c.rope.theta;
    d["tied_embeddings"] = c.tied_embeddings;
    d["qkv_bias"] = c.qkv_bias;
    d["qk_norm"] = c.qk_norm || c.qk_norm_full;
    d["sink_logits"] = c.sink_logits;
    d["layer_window"] = c.layer_window;
    d["n_experts"] = c.moe.n_experts;
    d["n_experts_used"] = c.moe.n_used;
    d["bos_id"] = c.bos_id;
    d["eos_id"] = c.eos_id;
    d["n_params"] = model_->n_params();
    d["weight_bytes"] = model_->weight_bytes();
    d["tokenizer_vocab"] = model_->tokenizer() ? model_->tokenizer()->vocab_size() : 0;
    return d;
  }

  std::string describe() const { return model_->describe(); }
  std::string repr() const {
    const ModelConfig& c = model_->config();
    return "sinklab.Model('" + model_->path() + "', arch=" + c.arch + ", layers=" + std::to_string(c.n_layers) +
           ", dim=" + std::to_string(c.dim) + ", vocab=" + std::to_string(c.vocab) + ")";
  }

 const std::shared_ptr<const Model>& shared() const { return model_; }

 private:
  const Tokenizer& tokenizer() const {
    check(model_->tokenizer() != nullptr,
          "model '" + model_->path() + "' has no tokenizer: pass tokenizer=PATH to sinklab.Model");
    return *model_->tokenizer();
  }

  int64_t default_context() const {
    const int64_t m = model_->config().max_seq;
    return m > 0 ? m : 4096;
  }

  std::shared_ptr<const Model> model_;
};

// ---- interventions (include/sinklab/intervene.h): ablate=None, one spec or a list of specs ----
std::vector<std::string> ablate_specs(py::handle ablate) {
  if (ablate.is_none()) return {};
  if (py::isinstance<py::str>(ablate)) return {ablate.cast<std::string>()};
  std::vector<std::string> out;
  for (py::handle h : ablate) {
    if (!py::isinstance<py::str>(h)) throw py::type_error("ablate must be a spec string or a list of spec strings");
    out.push_back(h.cast<std::string>());
  }
  return out;
}

// Runs a probe on a fresh session with the interventions installed; prepended tokens come first in the ids.
template <typename Probe>
auto run_ablated(const PyModel& m, const std::vector<int32_t>& ids, const std::vector<std::string>& ablate,
                 Probe probe) {
  const std::vector<Intervention> list = parse_interventions(ablate);
  std::vector<int32_t> fed = intervention_prefix(list, m.shared()->config());
  fed.insert(fed.end(), ids.begin(), ids.end());
  Session session(m.shared(), probe_session_options(int64_t(fed.size())));
  const AttachedInterventions attached(session, list);
  return probe(session, std::span<const int32_t>(fed));
}

constexpr const char* kSessionDoc = R"doc(
A decoding session with a KV cache policy (see `sinklab info` for the list).

Session(model, cache='dense', sink=None, window=None, positions=None, context=0, ablate=None)
  cache      policy name or spec: 'dense', 'window', 'sink', 'sink-logit', 'modal',
             'chunked', 'heavy', 'adaptive', 'snapkv', or e.g. 'sink:sink=4,window=252',
             'chunked:sink_chunks=1,window_chunks=4,chunk_tokens=64', 'adaptive:sink=4,budget=64'
  sink       sink tokens S (cache='sink')
  window     window tokens W (cache='window', 'sink', 'sink-logit')
  positions  'reindex', 'shift' or 'absolute'; None = reindex (absolute for
             models with neither RoPE nor a GOAT/ALiBi prior)
  context    the context that sizes left out follow (dense limit; window W; sink
             4 + context - 4); 0 = the model's training context
  ablate     intervention spec or list of specs ('sink:keys=0', 'reset:layer=1,dims=3',
             'prune:layer=0,expert=2', 'prepend:token=bos'; grammar in sinklab/intervene.h);
             prepended tokens are fed at construction and after reset()

feed(ids, modality=None, round=None, chunk=None) runs token ids through the
model (a full streaming cache evicts); modality and round/chunk (one value or
one per id) are the per-token metadata of the 'modal' and 'chunked' caches;
next_logits() is the float32 [vocab] array after the last fed token;
evict_stats() is a dict of counters.
)doc";

class PySession {
 public:
  PySession(const PyModel& model, const std::string& cache, py::object sink, py::object window,
            py::object positions, int64_t context, py::handle ablate) {
    if (context < 0) throw py::value_error("context must be >= 0");
    SessionOptions o;
    o.cache = cache;
    auto add = [&](const char* key, py::object v, int64_t lo) {
      if (v.is_none()) return;
      const int64_t x = to_int(v, key, lo, int64_t(1) << 30);
      o.cache += (o.cache.find(':') == std::string::npos ? ":" : ",") + std::string(key) + "=" + std::to_string(x);
    };
    add("sink", sink, 0);
    add("window", window, 1);
    o.context = context;  // sizes left out of the spec follow it (with_default_sizes)
    if (!positions.is_none()) o.positions = positions.cast<std::string>();
    session_ = std::make_unique<Session>(model.shared(), o);
    const std::vector<Intervention> list = parse_interventions(ablate_specs(ablate));
    prefix_ = intervention_prefix(list, model.shared()->config());
    attached_ = std::make_unique<AttachedInterventions>(*session_, list);
    if (!prefix_.empty()) session_->feed(prefix_);
  }

  py::object feed(py::handle ids, py::handle modality, py::handle round, py::handle chunk, py::handle taps) {
    const std::vector<int32_t> v = token_ids(ids, "ids", /*allow_empty=*/false, /*allow_scalar=*/true);
    if (!round.is_none() && !chunk.is_none()) throw py::value_error("give round or chunk, not both");
    const py::handle group = round.is_none() ? chunk : round;
    const char* group_name = round.is_none() ? "chunk" : "round";
    std::vector<TokenMeta> meta;
    if (!modality.is_none() || !group.is_none()) {
      meta.resize(v.size());
      const std::vector<int32_t> mod = per_token(modality, "modality", v.size(), /*names=*/true);
      const std::vector<int32_t> grp = per_token(group, group_name, v.size(), /*names=*/false);
      for (size_t i = 0; i < v.size(); ++i) {
        if (!mod.empty()) {
          if (mod[i] < 0 || mod[i] > 2)
            throw py::value_error("modality must be 0/'text', 1/'vision' or 2/'audio', got " + std::to_string(mod[i]));
          meta[i].modality = uint8_t(mod[i]);
        }
        if (!grp.empty()) meta[i].round = grp[i];
      }
    }
    std::unique_ptr<TapRecorder> recorder;
    if (!taps.is_none()) {
      std::vector<std::string> names;
      if (py::isinstance<py::str>(taps)) names.push_back(taps.cast<std::string>());
      else
        for (const py::handle t : taps) names.push_back(to_string(t, "taps"));
      recorder = std::make_unique<TapRecorder>(*session_, names);
    }
    {
      py::gil_scoped_release unlocked;
      session_->feed(v, meta);
    }
    if (!recorder) return py::none();
    return recorder->result();
  }

  int add_tap(const std::string& pattern, py::function fn) { return add_python_tap(*session_, pattern, std::move(fn)); }
  void remove_tap(int id) { session_->taps().remove(id); }

  py::array_t<float> next_logits() const {
    const auto l = session_->logits();
    py::array_t<float> out(std::vector<ssize_t>{ssize_t(l.size())});
    std::copy(l.begin(), l.end(), out.mutable_data());
    return out;
  }

  py::dict evict_stats() const {
    const EvictStats e = session_->evict_stats();
    py::dict d;
    d["fed"] = e.fed;
    d["cached"] = e.cached;
    d["capacity"] = e.capacity;
    d["evicted"] = e.evicted;
    d["rows_rotated"] = e.rows_rotated;
    d["bytes"] = e.bytes;
    return d;
  }

  std::vector<int64_t> cached_indices() const {
    std::vector<int64_t> out;
    for (const TokenMeta& t : session_->cache().survivors()) out.push_back(t.index);
    return out;
  }

  std::string positions() const { return position_contract_name(session_->positions()); }
  int64_t n_past() const { return session_->n_past(); }
  int64_t capacity() const { return session_->context(); }
  void reset() {
    session_->reset();
    if (!prefix_.empty()) session_->feed(prefix_);
  }

 private:
  // None -> {}; an int (or modality name) -> repeated n times; else one per token.
  static std::vector<int32_t> per_token(py::handle obj, const char* name, size_t n, bool names) {
    if (obj.is_none()) return {};
    auto one = [&](py::handle x) -> int32_t {
      if (names && py::isinstance<py::str>(x)) {
        const std::string s = x.cast<std::string>();
        if (s == "text") return 0;
        if (s == "vision") return 1;
        if (s == "audio") return 2;
        throw py::value_error(std::string(name) + " must be 'text', 'vision' or 'audio', got '" + s + "'");
      }
      return x.cast<int32_t>();
    };
    if (py::isinstance<py::int_>(obj) || py::isinstance<py::str>(obj)) return std::vector<int32_t>(n, one(obj));
    const py::sequence seq = py::reinterpret_borrow<py::sequence>(py::module_::import("builtins").attr("list")(obj));
    if (seq.size() != n)
      throw py::value_error(std::string(name) + " has " + std::to_string(seq.size()) + " entries for " +
                            std::to_string(n) + " ids (expected one per id)");
    std::vector<int32_t> out;
    for (const py::handle x : seq) out.push_back(one(x));
    return out;
  }

  std::unique_ptr<Session> session_;
  std::vector<int32_t> prefix_;                    // prepend interventions
  std::unique_ptr<AttachedInterventions> attached_;  // destroyed before session_
};

// ---- probes (include/sinklab/probe.h): results as dicts of numpy arrays / lists ----

py::object json_to_python(const nlohmann::json& j) {
  return py::module_::import("json").attr("loads")(j.dump());
}

// Probe results share one convention: a dict of numpy arrays whose first axis
// is the layer (in the order of "layers"), plus the options as scalars.
py::array_t<double> doubles(const std::vector<double>& v, std::vector<ssize_t> shape) {
  py::array_t<double> a(shape);
  std::copy(v.begin(), v.end(), a.mutable_data());
  return a;
}

template <typename T, typename Field>
py::array_t<int64_t> int_column(const std::vector<T>& rows, Field field) {
  py::array_t<int64_t> a(ssize_t(rows.size()));
  for (size_t i = 0; i < rows.size(); ++i) a.mutable_data()[i] = int64_t(field(rows[i]));
  return a;
}

template <typename T, typename Field>
py::array_t<double> double_column(const std::vector<T>& rows, Field field) {
  py::array_t<double> a(ssize_t(rows.size()));
  for (size_t i = 0; i < rows.size(); ++i) a.mutable_data()[i] = double(field(rows[i]));
  return a;
}

py::dict sink_scores_py(const PyModel& m, py::handle ids, double eps, int max_keys, int first_k, py::handle ablate) {
  const std::vector<std::string> specs = ablate_specs(ablate);
  const std::vector<int32_t> v = token_ids(ids, "ids");
  SinkScoreOptions o;
  o.eps = eps;
  o.max_keys = max_keys;
  o.first_k = first_k;
  SinkScores r;
  {
    py::gil_scoped_release unlocked;
    r = run_ablated(m, v, specs, [&](Session& s, std::span<const int32_t> fed) { return sink_scores(s, fed, o); });
  }
  py::dict d;
  const auto L = ssize_t(r.layers.size()), H = ssize_t(r.n_heads), K = ssize_t(r.n_keys);
  d["layers"] = int_column(r.layers, [](int l) { return l; });
  d["alpha"] = doubles(r.alpha, {L, H, K});
  d["sink_percent"] = doubles(r.sink_percent, {K});
  d["mass_first_k"] = doubles(r.mass_first_k, {L, H});
  d["sink_logit_mass"] = doubles(r.sink_logit_mass, {L, H});
  d["eps"] = r.eps;
  d["first_k"] = r.first_k;
  return d;
}

// Entries (top or flagged) as columns prefixed by `prefix`, in `shape`; a flat
// list also gets each entry's layer from `layer_of`.
void add_entry_columns(py::dict& d, const std::string& prefix, const std::vector<ActivationEntry>& e,
                       const std::vector<int64_t>& layer_of, std::vector<ssize_t> shape) {
  auto shaped = [&](auto a) { return a.reshape(shape); };
  d[(prefix + "token").c_str()] = shaped(int_column(e, [](const ActivationEntry& x) { return x.token; }));
  d[(prefix + "token_id").c_str()] = shaped(int_column(e, [](const ActivationEntry& x) { return x.token_id; }));
  d[(prefix + "dim").c_str()] = shaped(int_column(e, [](const ActivationEntry& x) { return x.dim; }));
  d[(prefix + "value").c_str()] = shaped(double_column(e, [](const ActivationEntry& x) { return x.value; }));
  d[(prefix + "ratio").c_str()] = shaped(double_column(e, [](const ActivationEntry& x) { return x.ratio; }));
  if (shape.size() == 1)
    d[(prefix + "layer").c_str()] = int_column(layer_of, [](int64_t l) { return l; });
}

py::dict massive_activations_py(const PyModel& m, py::handle ids, double abs_threshold, double ratio_threshold,
                                int top_n, py::handle ablate) {
  const std::vector<std::string> specs = ablate_specs(ablate);
  const std::vector<int32_t> v = token_ids(ids, "ids");
  MassiveActivationOptions o;
  o.abs_threshold = abs_threshold;
  o.ratio_threshold = ratio_threshold;
  o.top_n = top_n;
  MassiveActivations r;
  {
    py::gil_scoped_release unlocked;
    r = run_ablated(m, v, specs, [&](Session& s, std::span<const int32_t> fed) { return massive_activations(s, fed, o); });
  }
  const auto& ls = r.layers;
  py::dict d;
  d["layers"] = int_column(ls, [](const MassiveLayer& l) { return l.layer; });
  d["median_abs"] = double_column(ls, [](const MassiveLayer& l) { return l.median_abs; });
  d["max_abs"] = double_column(ls, [](const MassiveLayer& l) { return l.max_abs; });
  d["max_ratio"] = double_column(ls, [](const MassiveLayer& l) { return l.max_ratio; });
  d["n_flagged"] = int_column(ls, [](const MassiveLayer& l) { return l.n_flagged; });
  // Every layer reports min(top_n, tokens x dim) entries: a [layers, top] grid.
  const ssize_t top = ls.empty() ? 0 : ssize_t(ls[0].top.size());
  std::vector<ActivationEntry> tops, flagged;
  std::vector<int64_t> flagged_layer;
  for (const MassiveLayer& l : ls) {
    tops.insert(tops.end(), l.top.begin(), l.top.end());
    flagged.insert(flagged.end(), l.flagged.begin(), l.flagged.end());
    flagged_layer.insert(flagged_layer.end(), l.flagged.size(), l.layer);
  }
  add_entry_columns(d, "top_", tops, {}, {ssize_t(ls.size()), top});
  add_entry_columns(d, "flagged_", flagged, flagged_layer, {ssize_t(flagged.size())});
  d["abs_threshold"] = r.abs_threshold;
  d["ratio_threshold"] = r.ratio_threshold;
  return d;
}

py::dict propagation_py(const PyModel& m, py::handle ids, py::handle ablate) {
  const std::vector<std::string> specs = ablate_specs(ablate);
  const std::vector<int32_t> v = token_ids(ids, "ids");
  Propagation r;
  {
    py::gil_scoped_release unlocked;
    r = run_ablated(m, v, specs, [&](Session& s, std::span<const int32_t> fed) { return propagation(s, fed); });
  }
  const auto& ls = r.layers;
  py::dict d;
  d["layers"] = int_column(ls, [](const PropagationLayer& l) { return l.layer; });
  d["centered_ratio"] = double_column(ls, [](const PropagationLayer& l) { return l.centered_ratio; });
  d["effective_rank"] = double_column(ls, [](const PropagationLayer& l) { return l.effective_rank; });
  d["dirichlet_energy"] = double_column(ls, [](const PropagationLayer& l) { return l.dirichlet_energy; });
  d["dirichlet_energy_normalized"] =
      double_column(ls, [](const PropagationLayer& l) { return l.dirichlet_energy_normalized; });
  const ssize_t n_sv = ls.empty() ? 0 : ssize_t(ls[0].singular_values.size());
  std::vector<double> sv;
  for (const PropagationLayer& l : ls) sv.insert(sv.end(), l.singular_values.begin(), l.singular_values.end());
  d["singular_values"] = doubles(sv, {ssize_t(ls.size()), n_sv});
  d["influence_on_last"] = doubles(r.influence_on_last, {ssize_t(r.influence_on_last.size())});
  d["n_tokens"] = r.n_tokens;
  return d;
}

}  // namespace

void register_model(py::module_& m) {
  py::class_<PyModel>(m, "Model", kModelDoc)
      .def(py::init<const std::string&, py::object, const std::string&, bool>(), py::arg("path"),
           py::arg("tokenizer") = py::none(), py::arg("dtype") = "native", py::arg("mmap") = true)
      .def("tokenize", checked_method("Model", &PyModel::tokenize), "Text (str or bytes) to a list of token ids.", py::arg("text"),
           py::arg("add_bos") = true)
      .def("detokenize", checked_method("Model", &PyModel::detokenize),
           "Token ids to text (special tokens dropped; invalid UTF-8 becomes U+FFFD).", py::arg("ids"))
      .def("logits", checked_method("Model", &PyModel::logits),
           "float32 array [len(ids), vocab]: row i holds the next-token logits after ids[:i+1], "
           "computed from a fresh cache. Batches: a 2-D integer array gives [batch, n, vocab]; a list "
           "of sequences (ragged lengths allowed) gives a list of [n_i, vocab] arrays.",
           py::arg("ids"))
      .def("generate", checked_method("Model", &PyModel::generate), kGenerateDoc, py::arg("prompt"), py::kw_only(),
           py::arg("n") = GenerateOptions{}.max_tokens, py::arg("temperature") = shortest(GenerateOptions{}.temperature),
           py::arg("top_k") = GenerateOptions{}.top_k, py::arg("top_p") = shortest(GenerateOptions{}.top_p),
           py::arg("min_p") = shortest(GenerateOptions{}.min_p), py::arg("repeat_penalty") = shortest(GenerateOptions{}.repeat_penalty),
           py::arg("repeat_last_n") = GenerateOptions{}.repeat_last_n, py::arg("seed") = py::none(),
           py::arg("add_bos") = true, py::arg("context") = 0)
      .def("perplexity", checked_method("Model", &PyModel::perplexity),
           "Perplexity of ids streamed token by token through a KV cache (the loop of `sinklab ppl`): dict "
           "with cache (sizes filled in), positions, capacity, predicted, nll, ppl, kl (to kl_base), windows "
           "(dense past its context is scored in fresh windows), tokens_per_s, kv_bytes, chunks, and "
           "token_nll (float32 array) when asked.",
           py::arg("ids"), py::kw_only(), py::arg("cache") = "dense", py::arg("positions") = "",
           py::arg("recompute") = false, py::arg("kl_base") = "", py::arg("ablate") = py::none(),
           py::arg("context") = 0, py::arg("token_nll") = false)
      .def_property_readonly("config", checked_method("Model", &PyModel::config), "Architecture and size as a dict.")
      .def("describe", checked_method("Model", &PyModel::describe), "Multi-line summary: architecture, shapes, dtypes, memory.")
      .def("__repr__", checked_method("Model", &PyModel::repr));

  m.def("sink_scores", &sink_scores_py,
        "Sink scores (Gu et al.): dict with alpha [layers, heads, keys] (mean attention on key k over "
        "queries i >= k), sink_percent [keys] (Sink_k^eps in %), mass_first_k [layers, heads], sink_logit_mass "
        "[layers, heads] (mean attention a learned sink logit takes; ~0 without sink logits).",
        py::arg("model"), py::arg("ids"), py::kw_only(), py::arg("eps") = 0.3, py::arg("max_keys") = 0,
        py::arg("first_k") = SinkScoreOptions{}.first_k, py::arg("ablate") = py::none());
  m.def("massive_activations", &massive_activations_py,
        "Massive activations of the residual stream (Sun et al.): dict with layers [L], median_abs, max_abs, "
        "max_ratio, n_flagged [L]; the top_n largest |h| per layer as top_token, top_token_id, top_dim, "
        "top_value, top_ratio [L, top_n]; every flagged entry (|h| > abs_threshold and > ratio_threshold x "
        "median) as flagged_layer, flagged_token, flagged_token_id, flagged_dim, flagged_value, flagged_ratio [F].",
        py::arg("model"), py::arg("ids"), py::kw_only(), py::arg("abs_threshold") = 100.0,
        py::arg("ratio_threshold") = 1000.0, py::arg("top_n") = 5, py::arg("ablate") = py::none());
  m.def("propagation", &propagation_py,
        "Information propagation: dict with influence_on_last [tokens] (attention rollout), and per layer "
        "layers, centered_ratio, effective_rank, dirichlet_energy, dirichlet_energy_normalized [L] and "
        "singular_values [L, min(tokens, dim)] of the residual stream.",
        py::arg("model"), py::arg("ids"), py::kw_only(), py::arg("ablate") = py::none());
  py::class_<PySession>(m, "Session", kSessionDoc)
      .def(py::init([](py::handle model, const std::string& cache, py::object sink, py::object window,
                       py::object positions, int64_t context, py::handle ablate) {
             if (!py::isinstance<PyModel>(model)) throw py::type_error("model must be a sinklab.Model");
             return std::make_unique<PySession>(*initialised_self<PyModel>(model, "Model"), cache, std::move(sink),
                                                std::move(window), std::move(positions), context, ablate);
           }),
           py::arg("model"), py::arg("cache") = "dense", py::arg("sink") = py::none(),
           py::arg("window") = py::none(), py::arg("positions") = py::none(), py::arg("context") = 0,
           py::arg("ablate") = py::none(),
           py::keep_alive<1, 2>())
      .def("feed", checked_method("Session", &PySession::feed),
           "Runs token ids (int, list or 1-D array) through the model. modality ('text', 'vision', "
           "'audio' or 0/1/2) and round or chunk (ids that never decrease) are one value for all ids or "
           "one per id; the modal and chunked caches read them. taps: a tap name or pattern, or a list "
           "of them (docs/ARCHITECTURE.md lists the names: 'blk.3.resid_out', 'blk.*.attn_probs', ...): "
           "feed then returns a dict name -> float32 array [rows, cols] ([heads, rows, n_ctx] for "
           "attn_probs; a list of arrays when a name fires once per prefill chunk); else None.",
           py::arg("ids"), py::kw_only(), py::arg("modality") = py::none(), py::arg("round") = py::none(),
           py::arg("chunk") = py::none(), py::arg("taps") = py::none())
      .def("add_tap", checked_method("Session", &PySession::add_tap), kAddTapDoc, py::arg("pattern"), py::arg("fn"))
      .def("remove_tap", checked_method("Session", &PySession::remove_tap), "Removes a tap added by add_tap.",
           py::arg("id"))
      .def("next_logits", checked_method("Session", &PySession::next_logits), "float32 [vocab]: next-token logits after the last fed token.")
      .def("evict_stats", checked_method("Session", &PySession::evict_stats),
           "dict: fed, cached, capacity, evicted, rows_rotated (shift), bytes (KV storage).")
      .def("cached_indices", checked_method("Session", &PySession::cached_indices), "Stream indices of the cached tokens, in cache order.")
      .def("reset", checked_method("Session", &PySession::reset), "Empties the cache.")
      .def_property_readonly("positions", checked_method("Session", &PySession::positions))
      .def_property_readonly("n_past", checked_method("Session", &PySession::n_past))
      .def_property_readonly("capacity", checked_method("Session", &PySession::capacity));
}

}  // namespace sinklab::python
