// `sinklab bench model`: prefill and decode speed of the decoder forward on a
// Llama-shaped model with random weights that the benchmark writes itself
// (safetensors + config.json, f32 and bf16), as fractions of the sgemm rate and
// the memory copy bandwidth measured in the same run. Misses are reported,
// never turned into a failure.
#include <omp.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "output_guard.h"
#include "bench_harness.h"
#include "commands.h"
#include "sinklab/export.h"
#include "sinklab/formats.h"
#include "sinklab/model.h"

namespace sinklab::cli {

namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

constexpr double kDecodeTarget = 0.80;   // of the copy bandwidth
constexpr double kPrefillTarget = 0.50;  // of the sgemm rate

struct BenchShape {
  int64_t dim = 768, layers = 12, heads = 12, kv_heads = 12, hidden = 2048, vocab = 32000;
  int64_t head_dim() const { return dim / heads; }
};

// Parameters of the block matrices a token multiplies (the routed experts only).
int64_t active_matrix_params(const ModelConfig& c) {
  const int64_t qd = c.n_heads * c.head_dim, kvd = c.n_kv_heads * c.head_dim;
  const int64_t ffn = c.moe.n_experts > 0 ? int64_t(c.moe.n_used) * 3 * c.dim * c.moe.expert_hidden +
                                                3 * c.dim * c.moe.shared_hidden
                                          : 3 * c.dim * c.hidden;
  return c.n_layers * (c.dim * qd + 2 * c.dim * kvd + qd * c.dim + ffn);
}

// Matrix types a run may ask for: f32 and bf16 are written as safetensors; the
// others are written as f32 and converted to a GGUF of that type (computed natively).
const std::vector<std::string>& bench_types() {
  static const std::vector<std::string> t = {"f32", "bf16", "f16", "q8_0", "q6_k", "q5_k", "q4_k", "q4_0", "mxfp4"};
  return t;
}

struct BenchModelFlags {
  CLI::App* app = nullptr;
  bool quick = false;
  int64_t prompt_tokens = 512;
  int64_t decode_tokens = 128;
  int reps = 3;
  int threads = 0;
  std::vector<std::string> dtypes{"f32", "bf16"};
  std::string model_file;  // -m: time this file instead of the random model
  int64_t vocab = 32000;
  bool mmap = false;
  std::string json_path;
  OutputGuard guard;
};

constexpr const char* kFooter = R"(What it measures (batch 1, one Session, f32 activations and KV cache):
  model     Llama-shaped, random weights (uniform, std 0.02; norms 1), written as
            safetensors + config.json into a temporary folder and loaded with
            Model::load; --dtypes picks the stored (and in-memory) matrix dtype.
  machine   sgemm GFLOP/s (OpenBLAS, 2048^3, all threads), memory copy GB/s
            (a large buffer copied with non-temporal stores, two streams per
            thread; counts bytes read + bytes written; glibc's memcpy, slower on
            the hosts measured, shown for reference) and read-only GB/s (a
            vectorised sum over the buffer, two streams per thread).
  prefill   one feed() of a random --prompt-tokens prompt into an empty cache;
            useful FLOPs = 2 x block-matrix params x tokens + causal attention
            (4 x n(n+1)/2 x head_dim x heads x layers) + one logits row (2 x vocab x dim);
            fraction = useful FLOP/s / sgemm FLOP/s.
  decode    --decode-tokens single-token feed() calls from an empty cache (like tg128);
            fraction = weight bytes x tokens/s / copy bandwidth (read + write); the
            copy and read-only passes are timed in turn with the decode runs (copy,
            read, copy, read, decode, ...), as the bandwidth of shared hosts drifts,
            each rate the median of its passes, each round after untimed passes of
            its own (a copy; four decode steps); also shown against the read-only rate.
Targets (PASS/MISS, never an error): decode >= 80% of the copy bandwidth,
prefill >= 50% of the sgemm rate. A decode row more than 5% faster than the
read-only rate of its own run, or whose copy rate is under 75% of its read-only
rate, shows SUSPECT (a disturbed bandwidth pass): re-run it.
Timings: median of --reps runs after a warm-up.)";

CLI::App* add_flags(CLI::App& bench, BenchModelFlags& f) {
  CLI::App* a = bench.add_subcommand(
      "model",
      "Time prefill and decode of a ~110M-parameter Llama-shaped model with random weights against "
      "the sgemm rate and the memory bandwidth measured in the same run");
  a->add_flag("--quick", f.quick,
              "Fast run (well under a minute): 128-token prompt, 32 decode tokens, 1 rep; "
              "flags given explicitly still apply");
  a->add_option("--prompt-tokens", f.prompt_tokens, "Prefill prompt length (default 512)")
      ->check(CLI::Range(int64_t(1), int64_t(8192)));
  a->add_option("--decode-tokens", f.decode_tokens, "Decode steps (default 128)")
      ->check(CLI::Range(int64_t(1), int64_t(8192)));
  a->add_option("--reps", f.reps, "Timed repetitions, median reported (default 3)")->check(CLI::Range(1, 100));
  add_threads_flag(*a, f.threads);
  a->add_option("--dtypes", f.dtypes,
                "Comma-separated matrix types of the random model: f32, bf16 (safetensors), f16, q8_0, q6_k, "
                "q5_k, q4_k, q4_0, mxfp4 (converted to GGUF and computed natively) (default f32,bf16)")
      ->delimiter(',')
      ->check(CLI::IsMember(bench_types()));
  a->add_option("-m,--model", f.model_file,
                "Time this model file or folder (any format and type, as loaded by default) instead of the "
                "random model; --dtypes and --vocab do not apply");
  a->add_option("--vocab", f.vocab,
                "Vocabulary of the random model (default 32000; 512 gives the 85.7M model of llama.cpp's "
                "figures in docs/results/model-bench.md)")
      ->check(CLI::Range(int64_t(16), int64_t(1) << 20));
  a->add_flag("--mmap", f.mmap,
              "Run on zero-copy views of the memory-mapped model file (default: weights copied into "
              "process memory, as --no-mmap; mapped pages that the OS reclaims are re-read from disk "
              "in the middle of a decode step)");
  a->add_option("--json", f.json_path, "Also write every number to this JSON file");
  f.guard.add_force_flag(*a);
  a->footer(kFooter);
  return a;
}

std::string command_line(const BenchModelFlags& f) {
  std::string cmd = "sinklab bench model";
  if (f.quick) cmd += " --quick";
  if (f.app->count("--prompt-tokens")) cmd += " --prompt-tokens " + std::to_string(f.prompt_tokens);
  if (f.app->count("--decode-tokens")) cmd += " --decode-tokens " + std::to_string(f.decode_tokens);
  if (f.app->count("--reps")) cmd += " --reps " + std::to_string(f.reps);
  if (f.app->count("--threads")) cmd += " --threads " + std::to_string(f.threads);
  if (f.app->count("--dtypes")) {
    cmd += " --dtypes ";
    for (size_t i = 0; i < f.dtypes.size(); ++i) cmd += (i ? "," : "") + f.dtypes[i];
  }
  if (!f.model_file.empty()) cmd += " -m " + f.model_file;
  if (f.app->count("--vocab")) cmd += " --vocab " + std::to_string(f.vocab);
  if (f.mmap) cmd += " --mmap";
  if (f.app->count("--json")) cmd += " --json " + f.json_path;
  return cmd;
}

// A folder under the system temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "sinklab-bench-model-XXXXXX").string();
    check(mkdtemp(tmpl.data()) != nullptr, "bench model: cannot create a temporary folder in " +
                                               fs::temp_directory_path().string());
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Uniform values in [-amplitude, amplitude], filled in parallel chunks whose
// streams depend only on (seed, chunk), so the result does not depend on threads.
void fill_random(float* out, int64_t n, uint64_t seed, float amplitude) {
  constexpr int64_t kChunk = 1 << 16;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    uint64_t s = (seed * 0x9E3779B97F4A7C15ull) ^ (uint64_t(c + 1) * 0xD1B54A32D192ED03ull);
    const int64_t end = std::min(n, (c + 1) * kChunk);
    for (int64_t i = c * kChunk; i < end; ++i) {
      s ^= s >> 12;
      s ^= s << 25;
      s ^= s >> 27;
      const double u = double((s * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0);
      out[i] = float((2.0 * u - 1.0) * amplitude);
    }
  }
}

nlohmann::json hf_config(const BenchShape& s, DType dtype) {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"model_type", "llama"},
          {"vocab_size", s.vocab},
          {"hidden_size", s.dim},
          {"intermediate_size", s.hidden},
          {"num_hidden_layers", s.layers},
          {"num_attention_heads", s.heads},
          {"num_key_value_heads", s.kv_heads},
          {"max_position_embeddings", 4096},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", 10000.0},
          {"tie_word_embeddings", true},
          {"bos_token_id", 1},
          {"eos_token_id", 2},
          {"torch_dtype", dtype == DType::BF16 ? "bfloat16" : "float32"}};
}

// Writes model.safetensors and config.json into `dir`.
void write_random_model(const fs::path& dir, const BenchShape& s, DType dtype, uint64_t seed) {
  const int64_t D = s.dim, qd = s.heads * s.head_dim(), kvd = s.kv_heads * s.head_dim();
  struct Spec {
    std::string name;
    std::vector<int64_t> shape;
    bool norm;
  };
  std::vector<Spec> specs{{"model.embed_tokens.weight", {s.vocab, D}, false}, {"model.norm.weight", {D}, true}};
  for (int64_t l = 0; l < s.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    specs.push_back({p + "input_layernorm.weight", {D}, true});
    specs.push_back({p + "post_attention_layernorm.weight", {D}, true});
    specs.push_back({p + "self_attn.q_proj.weight", {qd, D}, false});
    specs.push_back({p + "self_attn.k_proj.weight", {kvd, D}, false});
    specs.push_back({p + "self_attn.v_proj.weight", {kvd, D}, false});
    specs.push_back({p + "self_attn.o_proj.weight", {D, qd}, false});
    specs.push_back({p + "mlp.gate_proj.weight", {s.hidden, D}, false});
    specs.push_back({p + "mlp.up_proj.weight", {s.hidden, D}, false});
    specs.push_back({p + "mlp.down_proj.weight", {D, s.hidden}, false});
  }
  const float amplitude = float(0.02 * std::sqrt(3.0));
  std::vector<std::unique_ptr<uint8_t[]>> storage;
  std::vector<TensorEntry> entries;
  std::vector<float> values;
  for (size_t t = 0; t < specs.size(); ++t) {
    TensorEntry e;
    e.name = specs[t].name;
    e.shape = specs[t].shape;
    const int64_t n = e.numel();
    values.resize(size_t(n));
    if (specs[t].norm)
      std::fill(values.begin(), values.end(), 1.f);
    else
      fill_random(values.data(), n, seed + t, amplitude);
    e.type = dtype == DType::BF16 ? TensorType::BF16 : TensorType::F32;
    e.nbytes = size_t(n) * dtype_size(dtype);
    storage.push_back(std::make_unique<uint8_t[]>(e.nbytes));
    from_f32(dtype, values.data(), storage.back().get(), size_t(n));
    e.data = storage.back().get();
    entries.push_back(std::move(e));
  }
  write_safetensors((dir / "model.safetensors").string(), entries, {{"format", "pt"}});
  std::ofstream cfg(dir / "config.json");
  cfg << hf_config(s, dtype).dump(2) << "\n";
  check(bool(cfg), "bench model: cannot write " + (dir / "config.json").string());
}

struct DtypeResult {
  std::string dtype;
  int64_t params = 0, weight_bytes = 0;
  double write_s = 0, load_s = 0;
  bench::Timing prefill, decode;
  double prefill_tps = 0, decode_tps = 0;
  double prefill_gflops = 0, decode_gbps = 0;
  double prefill_fraction = 0, decode_fraction = 0;
  bench::CopyRate memory;            // measured just before the decode runs
  double decode_fraction_of_read = 0;
  double step_p50_s = 0, step_p90_s = 0, step_max_s = 0;  // single decode steps of the timed runs
  double rss_before_mib = 0;         // process resident memory before the model was loaded
  double rss_mib = 0;                // what loading the model and a prefill added to it
};

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// The random model in the asked type: safetensors for f32 / bf16, otherwise
// written as f32 and converted to a GGUF of that type.
std::shared_ptr<const Model> prepare_random_model(const BenchShape& shape, const std::string& type, bool mmap,
                                                  const fs::path& dir, DtypeResult& r) {
  const bool plain = type == "f32" || type == "bf16";
  const DType dtype = plain ? dtype_from_name(type) : DType::F32;
  auto t0 = clock_type::now();
  write_random_model(dir, shape, dtype, 1);
  LoadOptions lo;
  lo.weight_dtype = dtype;
  lo.mmap = mmap;
  std::string path = dir.string();
  if (!plain) {
    GgufExportOptions opts;
    opts.type = gguf_export_type_from_name(type);
    path = (dir / "model.gguf").string();
    export_gguf(*Model::load(dir.string(), lo), path, opts);
    fs::remove(dir / "model.safetensors");
  }
  r.write_s = seconds_since(t0);
  r.rss_before_mib = double(bench::current_rss_bytes()) / double(1 << 20);
  t0 = clock_type::now();
  std::shared_ptr<const Model> model = Model::load(path, lo);
  r.load_s = seconds_since(t0);
  return model;
}

DtypeResult time_model(const std::shared_ptr<const Model>& model, DtypeResult r, int64_t prompt_tokens,
                       int64_t decode_tokens, int reps, double sgemm_flops, size_t copy_bytes) {
  const ModelConfig& shape = model->config();
  r.params = model->n_params();
  r.weight_bytes = model->weight_bytes();
  std::vector<int32_t> tokens(size_t(std::max(prompt_tokens, decode_tokens)));
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t(3 + (i * 7919) % size_t(std::max<int64_t>(shape.vocab - 3, 1)));
  SessionOptions so;
  so.context = int64_t(tokens.size()) + 1;
  Session session(model, so);
  const std::span<const int32_t> prompt(tokens.data(), size_t(prompt_tokens));
  r.prefill = bench::time_median(
      [&] {
        session.reset();
        session.feed(prompt);
      },
      1, reps);
  // The machine's bandwidth drifts on shared hosts: copy and read passes are
  // timed in turn with the decode runs (copy, read, copy, read, decode, ...),
  // and each rate is the median of all of its passes. An untimed copy comes
  // first in each round: pages left untouched for a second (here, during a
  // decode run) are slow to touch again on hosts that monitor memory access
  // (DAMON), and the rate sought is that of memory in use, as the weights are.
  // For the same reason untimed decode steps precede each decode run: the
  // weights sat idle during the copy and read passes, which a generating
  // model's never do; and the OpenMP team of the passes spins for ~10 ms
  // after the last one, on a CPU the decode run needs.
  // After prefill every weight has been read; the bandwidth probe's buffers come next.
  r.rss_mib = double(bench::current_rss_bytes()) / double(1 << 20) - r.rss_before_mib;
  bench::BandwidthProbe probe(copy_bytes);
  std::vector<double> steps;  // every step's wall time, warm-up run included (dropped below)
  const auto copy = [&] { probe.copy(); };
  const auto read = [&] { probe.read(); };
  const std::vector<bench::Timing> t = bench::time_interleaved(
      {copy, copy, read, copy, read,
       [&] {
         session.reset();
         for (size_t i = 0; i < std::min<size_t>(4, tokens.size()); ++i)
           session.feed(std::span<const int32_t>(&tokens[i], 1));
       },
       [&] {
         session.reset();
         for (int64_t i = 0; i < decode_tokens; ++i) {
           const auto t_step = clock_type::now();
           session.feed(std::span<const int32_t>(&tokens[size_t(i)], 1));
           steps.push_back(seconds_since(t_step));
         }
       }},
      1, reps);
  r.memory = probe.rate(bench::pooled({&t[1], &t[3]}), bench::pooled({&t[2], &t[4]}));
  r.decode = t[6];
  steps.erase(steps.begin(), steps.begin() + std::min<ptrdiff_t>(ptrdiff_t(decode_tokens), ptrdiff_t(steps.size())));
  std::sort(steps.begin(), steps.end());
  if (!steps.empty()) {
    r.step_p50_s = steps[steps.size() / 2];
    r.step_p90_s = steps[steps.size() * 9 / 10];
    r.step_max_s = steps.back();
  }

  const double P = double(prompt_tokens);
  const double attn_flops = 4.0 * P * (P + 1) / 2.0 * double(shape.head_dim * shape.n_heads * shape.n_layers);
  const double prefill_flops =
      2.0 * double(active_matrix_params(shape)) * P + attn_flops + 2.0 * double(shape.vocab * shape.dim);
  r.prefill_tps = P / r.prefill.median_s;
  r.prefill_gflops = prefill_flops / r.prefill.median_s * 1e-9;
  r.prefill_fraction = prefill_flops / r.prefill.median_s / sgemm_flops;
  r.decode_tps = double(decode_tokens) / r.decode.median_s;
  r.decode_gbps = double(r.weight_bytes) * r.decode_tps * 1e-9;
  r.decode_fraction = r.decode_gbps / r.memory.gb_per_s;
  r.decode_fraction_of_read = r.decode_gbps / r.memory.read_gb_per_s;

  return r;
}

const char* verdict(double fraction, double target) { return fraction >= target ? "PASS" : "MISS"; }

// Decode cannot stream its weights faster than memory reads them, and a copy
// pass (which reads and writes) streams at most a little faster than a read
// pass: a decode rate above the read-only rate of the same run, or a copy rate
// far under it, means a disturbed bandwidth pass (on shared hosts a pass
// sometimes runs several times slower), and such a row is reported as SUSPECT,
// never as a pass. A decode rate between the copy and the read-only rate is
// credible (decode only reads) and counts as above the target.
bool decode_rates_credible(const DtypeResult& r) {
  return r.decode_fraction_of_read <= 1.05 && r.memory.gb_per_s >= 0.75 * r.memory.read_gb_per_s;
}
const char* decode_verdict(const DtypeResult& r) {
  return decode_rates_credible(r) ? verdict(r.decode_fraction, kDecodeTarget) : "SUSPECT";
}
bool decode_passes(const DtypeResult& r) { return decode_rates_credible(r) && r.decode_fraction >= kDecodeTarget; }

int run_bench_model(BenchModelFlags f) {
  if (!f.json_path.empty()) f.guard.check_file(f.json_path, "--json");
  if (f.quick) {
    if (!f.app->count("--prompt-tokens")) f.prompt_tokens = 128;
    if (!f.app->count("--decode-tokens")) f.decode_tokens = 32;
    if (!f.app->count("--reps")) f.reps = 1;
  }
  bench::set_threads(f.threads);
  BenchShape shape;
  shape.vocab = f.vocab;
  const std::string cmd = command_line(f);
  std::printf("%s\n", cmd.c_str());
  std::shared_ptr<const Model> file_model;
  DtypeResult file_row;
  if (!f.model_file.empty()) {
    file_row.rss_before_mib = double(bench::current_rss_bytes()) / double(1 << 20);
    const auto t0 = clock_type::now();
    LoadOptions lo;
    lo.mmap = f.mmap;
    file_model = Model::load(resolve_model_source(f.model_file), lo);
    file_row.load_s = seconds_since(t0);
    const ModelConfig& c = file_model->config();
    std::printf("model: %s (%s %s, dim %lld, %lld layers, vocab %lld)\n", file_model->path().c_str(),
                file_model->format().c_str(), c.arch.c_str(), (long long)c.dim, (long long)c.n_layers,
                (long long)c.vocab);
  } else {
    std::printf("model: llama, dim %lld, %lld layers, %lld heads (kv %lld, head dim %lld), ffn %lld, vocab %lld, "
                "tied embeddings; random weights\n",
                (long long)shape.dim, (long long)shape.layers, (long long)shape.heads, (long long)shape.kv_heads,
                (long long)shape.head_dim(), (long long)shape.hidden, (long long)shape.vocab);
  }
  std::printf("threads: %d; weights %s\n", bench::threads(),
              f.mmap ? "memory-mapped (--mmap)" : "copied into process memory");
  std::fflush(stdout);

  const bench::SgemmRate sgemm = bench::measure_sgemm(2048, f.quick ? 2 : 5);
  const bench::CopyRate copy = bench::measure_copy(size_t(f.quick ? 256 : 512) << 20, f.quick ? 3 : 5);
  std::printf("machine: sgemm 2048^3 %.1f GFLOP/s; copy %zu MiB %.2f GB/s (bytes read + bytes written; "
              "memcpy %.2f), read-only %.2f GB/s\n",
              sgemm.gflops, copy.buffer_bytes >> 20, copy.gb_per_s, copy.memcpy_gb_per_s, copy.read_gb_per_s);
  std::printf("(decode rows use copy and read rates timed in turn with their decode runs)\n\n");
  std::printf("%-5s %9s %11s %7s | %8s %9s %8s %7s %6s | %8s %8s %7s %7s %7s %7s %7s %-6s %8s\n", "type", "params",
              "weights", "load s", "prefill", "tok/s", "GFLOP/s", "%sgemm", "target", "decode", "tok/s", "GB/s",
              "copy", "read", "%copy", "%read", "target", "+RSS MiB");
  std::fflush(stdout);

  std::vector<DtypeResult> results;
  const std::vector<std::string> runs = file_model ? std::vector<std::string>{"file"} : f.dtypes;
  for (const std::string& name : runs) {
    TempDir dir;
    DtypeResult r;
    std::shared_ptr<const Model> model = file_model;
    if (model) {
      r = file_row;
    } else {
      model = prepare_random_model(shape, name, f.mmap, dir.path(), r);
    }
    r.dtype = name;
    r = time_model(model, r, f.prompt_tokens, f.decode_tokens, f.reps, sgemm.gflops * 1e9, copy.buffer_bytes);
    model.reset();
    std::printf("%-5s %8.1fM %7.1f MiB %7.2f | pp%-6lld %9.1f %8.1f %6.1f%% %6s | tg%-6lld %8.2f %7.2f %7.2f %7.2f "
                "%6.1f%% %6.1f%% %-6s %8.1f\n",
                r.dtype.c_str(), double(r.params) / 1e6, double(r.weight_bytes) / double(1 << 20), r.load_s,
                (long long)f.prompt_tokens, r.prefill_tps, r.prefill_gflops, 100 * r.prefill_fraction,
                verdict(r.prefill_fraction, kPrefillTarget), (long long)f.decode_tokens, r.decode_tps,
                r.decode_gbps, r.memory.gb_per_s, r.memory.read_gb_per_s, 100 * r.decode_fraction,
                100 * r.decode_fraction_of_read, decode_verdict(r), r.rss_mib);
    std::fflush(stdout);
    results.push_back(r);
  }
  std::printf("\ndecode steps (ms): ");
  for (const DtypeResult& r : results)
    std::printf("%s median %.2f, p90 %.2f, max %.2f (a median step reads %.1f%% of the read-only rate)%s",
                r.dtype.c_str(), 1e3 * r.step_p50_s, 1e3 * r.step_p90_s, 1e3 * r.step_max_s,
                100.0 * double(r.weight_bytes) / r.step_p50_s * 1e-9 / r.memory.read_gb_per_s,
                &r == &results.back() ? "\n" : "; ");
  std::printf("\ntargets: decode >= %.0f%% of the copy bandwidth (weight bytes x tokens/s; the copy rate counts "
              "read + write), prefill >= %.0f%% of the sgemm rate\n",
              100 * kDecodeTarget, 100 * kPrefillTarget);

  if (!f.json_path.empty()) {
    nlohmann::json j = {{"command", cmd},
                        {"threads", bench::threads()},
                        {"mmap", f.mmap},
                        {"model",
                         {{"dim", shape.dim},
                          {"layers", shape.layers},
                          {"heads", shape.heads},
                          {"kv_heads", shape.kv_heads},
                          {"hidden", shape.hidden},
                          {"vocab", shape.vocab},
                          {"file", f.model_file},
                          {"tied_embeddings", true}}},
                        {"machine",
                         {{"sgemm_n", sgemm.n},
                          {"sgemm_gflops", sgemm.gflops},
                          {"copy_buffer_bytes", copy.buffer_bytes},
                          {"copy_gb_per_s_read_plus_write", copy.gb_per_s},
                          {"read_gb_per_s", copy.read_gb_per_s},
                          {"memcpy_gb_per_s_read_plus_write", copy.memcpy_gb_per_s}}},
                        {"prompt_tokens", f.prompt_tokens},
                        {"decode_tokens", f.decode_tokens},
                        {"targets", {{"decode_fraction_of_copy", kDecodeTarget}, {"prefill_fraction_of_sgemm", kPrefillTarget}}}};
    for (const DtypeResult& r : results)
      j["results"].push_back({{"dtype", r.dtype},
                              {"params", r.params},
                              {"weight_bytes", r.weight_bytes},
                              {"write_s", r.write_s},
                              {"load_s", r.load_s},
                              {"prefill_median_s", r.prefill.median_s},
                              {"prefill_tokens_per_s", r.prefill_tps},
                              {"prefill_gflops", r.prefill_gflops},
                              {"prefill_fraction_of_sgemm", r.prefill_fraction},
                              {"prefill_pass", r.prefill_fraction >= kPrefillTarget},
                              {"decode_median_s", r.decode.median_s},
                              {"decode_tokens_per_s", r.decode_tps},
                              {"decode_weight_gb_per_s", r.decode_gbps},
                              {"decode_copy_gb_per_s_read_plus_write", r.memory.gb_per_s},
                              {"decode_read_gb_per_s", r.memory.read_gb_per_s},
                              {"decode_fraction_of_copy", r.decode_fraction},
                              {"decode_fraction_of_read", r.decode_fraction_of_read},
                              {"decode_step_p50_s", r.step_p50_s},
                              {"decode_step_p90_s", r.step_p90_s},
                              {"decode_step_max_s", r.step_max_s},
                              {"decode_pass", decode_passes(r)},
                              {"decode_verdict", decode_verdict(r)},
                              {"rss_mib", r.rss_mib},
                              {"reps", r.decode.reps}});
    write_output_text(f.json_path, j.dump(2) + "\n", "--json");
    std::printf("wrote %s\n", f.json_path.c_str());
  }
  return 0;
}

}  // namespace

CLI::App* add_bench_model(CLI::App& bench, std::function<int()>& run) {
  auto f = std::make_shared<BenchModelFlags>();
  f->app = add_flags(bench, *f);
  run = [f]() { return run_bench_model(*f); };
  return f->app;
}

}  // namespace sinklab::cli
