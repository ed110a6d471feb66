// The attention benchmark suite behind `sinklab bench attention`: every
// measurement in one run, printed as a table as it goes and optionally written
// as JSON. Every ratio is against something measured in the same run: the
// sgemm rate, the memory copy bandwidth, or the materialised BLAS baseline.
#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <nlohmann/json.hpp>

#include "bench_harness.h"

namespace sinklab::bench {

namespace {

using json = nlohmann::ordered_json;

constexpr int64_t kHeads = 8;
constexpr int64_t kDim = 128;
constexpr int kSgemmN = 2048;
constexpr size_t kCopyBytes = size_t(512) << 20;
constexpr size_t kBaselineMaxScoreBytes = size_t(4) << 30;  // larger N: baseline skipped
constexpr int64_t kTargetN = 4096;                          // where the targets are judged
constexpr uint64_t kSeed = 20240601;

__attribute__((format(printf, 1, 2))) void say(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  std::vprintf(fmt, args);
  va_end(args);
  std::fflush(stdout);
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (std::fabs(bytes) >= 1024.0 && u < 4) bytes /= 1024.0, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", bytes, units[u]);
  return buf;
}

double rel_diff(const TensorView& a, const float* ref) {
  const float* x = static_cast<const float*>(a.data);
  double num = 0, den = 0;
  for (size_t i = 0; i < size_t(a.numel()); ++i) {
    num += (double(x[i]) - ref[i]) * (double(x[i]) - ref[i]);
    den += double(ref[i]) * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

struct Target {
  std::string what;
  std::optional<double> value;  // empty: not measured (note says why)
  double limit = 0;
  bool at_most = true;
  bool percent = false;  // value and limit are fractions shown as percent
  std::string note;

  std::string status() const {
    if (!value) return "n/a";
    return (at_most ? *value <= limit : *value >= limit) ? "PASS" : "MISS";
  }
  json to_json() const {
    json t = {{"what", what}, {"value", value ? json(*value) : json(nullptr)},
              {"comparison", at_most ? "<=" : ">="}, {"limit", limit},
              {"unit", percent ? "fraction" : "ratio"}, {"status", status()}};
    if (!note.empty()) t["note"] = note;
    return t;
  }
};

Target make_target(std::string what, double limit, bool at_most, bool percent = false) {
  Target t;
  t.what = std::move(what);
  t.limit = limit;
  t.at_most = at_most;
  t.percent = percent;
  return t;
}

// Formats x with fmt, or "n/a" when x is NaN (not measured).
std::string num(double x, const char* fmt) {
  if (std::isnan(x)) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, fmt, x);
  return buf;
}

json num_or_null(double x) { return std::isnan(x) ? json(nullptr) : json(x); }

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

class Suite {
 public:
  explicit Suite(const SuiteOptions& o) : opt_(o) {
    ref_n_ = std::count(o.sizes.begin(), o.sizes.end(), kTargetN) ? kTargetN : o.sizes.back();
    impl_name_ = o.impl == AttnImpl::Reference ? "reference" : "flash";
  }

  void run() {
    if (!opt_.json_path.empty()) {  // fail before minutes of measuring, not after
      json_out_.open(opt_.json_path);
      check(bool(json_out_), "bench: cannot write --json file " + opt_.json_path);
    }
    header();
    machine();
    probe_kernels();
    if (opt_.memory_n > 0) working_memory();
    forward_table();
    extras_overhead();
    backward_ratio();
    if (opt_.decode_keys > 0) decode();
    summary();
    if (!opt_.json_path.empty()) write_json();
  }

 private:
  ProblemShape shape(int64_t n, DType dtype = DType::F32) const {
    ProblemShape s;
    s.heads = kHeads;
    s.kv_heads = kHeads;
    s.n_q = s.n_k = n;
    s.dim = kDim;
    s.dtype = dtype;
    return s;
  }

  // Times a kernel call; a sinklab::Error (e.g. a kernel not in this build)
  // is reported once and leaves the result empty.
  std::optional<Timing> time_kernel(const std::function<void()>& fn, int warmup, int reps) {
    return time_kernels({fn}, warmup, reps).front();
  }

  // Times several calls interleaved (for ratios). When one throws an Error,
  // it is reported and each call is timed alone, so the others still count.
  std::vector<std::optional<Timing>> time_kernels(const std::vector<std::function<void()>>& fns,
                                                  int warmup, int reps) {
    std::vector<std::optional<Timing>> out(fns.size());
    try {
      const std::vector<Timing> t = time_interleaved(fns, warmup, reps);
      for (size_t i = 0; i < fns.size(); ++i) out[i] = t[i];
      return out;
    } catch (const Error& e) {
      report_error(e.what());
    }
    if (fns.size() == 1) return out;
    for (size_t i = 0; i < fns.size(); ++i) out[i] = time_kernel(fns[i], warmup, reps);
    return out;
  }

  void report_error(const std::string& message) {
    if (std::find(errors_.begin(), errors_.end(), message) != errors_.end()) return;
    errors_.push_back(message);
    say("  ! %s\n", message.c_str());
  }

  void forward(const AttnSpec& spec, AttnProblem& p) {
    attention_forward(spec, p.q, p.k, p.v, p.o, p.lse, nullptr, opt_.impl);
  }

  void backward(const AttnSpec& spec, AttnProblem& p) {
    attention_backward(spec, p.q, p.k, p.v, p.o, p.lse, p.d_o, p.grads, opt_.impl);
  }

  void header() {
    say("sinklab bench attention: %s kernels, %d threads, median of %d timed runs after 1 warm-up\n",
        impl_name_, threads(), opt_.reps);
    say("  (calls slower than 5 s get at most 3 timed runs; every number is from this run)\n\n");
    j_["command"] = opt_.command;
    j_["impl"] = impl_name_;
    j_["threads"] = threads();
    j_["reps"] = opt_.reps;
    j_["quick"] = opt_.quick;
    j_["problem"] = {{"batch", 1}, {"heads", kHeads}, {"kv_heads", kHeads}, {"head_dim", kDim},
                     {"causal", true}};
  }

  void machine() {
    say("machine\n");
    const SgemmRate g = measure_sgemm(kSgemmN, opt_.reps);
    sgemm_gflops_ = g.gflops;
    say("  sgemm %dx%dx%d, OpenBLAS, all threads       %8.1f GFLOP/s  (%.2f ms)\n", g.n, g.n, g.n,
        g.gflops, g.time.median_s * 1e3);
    const CopyRate c = measure_copy(kCopyBytes, opt_.reps);
    copy_gbs_ = c.gb_per_s;
    say("  memory copy %s -> %s, all threads   %8.1f GB/s     (bytes read + bytes written; non-temporal)\n\n",
        human_bytes(double(c.buffer_bytes)).c_str(), human_bytes(double(c.buffer_bytes)).c_str(),
        c.gb_per_s);
    j_["machine"] = {
        {"sgemm", {{"n", g.n}, {"seconds", g.time.median_s}, {"reps", g.time.reps}, {"gflops", g.gflops}}},
        {"copy", {{"buffer_bytes", c.buffer_bytes}, {"seconds", c.time.median_s}, {"reps", c.time.reps},
                  {"gb_per_s", c.gb_per_s}, {"counted", "bytes read + bytes written (2 x buffer)"}}}};
  }

  // One tiny call each way tells whether the kernels exist before big buffers are made.
  void probe_kernels() {
    AttnProblem p(shape(64), kSeed);
    p.add_backward_buffers(kSeed + 9);
    const AttnSpec spec = causal_spec();
    try {
      forward(spec, p);
      forward_ok_ = true;
      backward(spec, p);
      backward_ok_ = true;
    } catch (const Error& e) {
      say("NOTE: %s %s: %s\n      Its rows below show n/a; the rest is measured.\n\n", impl_name_,
          forward_ok_ ? "backward" : "forward", e.what());
      errors_.push_back(e.what());
    }
    j_["forward_available"] = forward_ok_;
    j_["backward_available"] = backward_ok_;
  }

  void working_memory() {
    const int64_t n = opt_.memory_n;
    say("working memory: one causal forward at N = %lld (f32)\n", (long long)n);
    json m = {{"n", n}};
    if (!forward_ok_) {
      say("  n/a (forward kernel not available)\n\n");
      j_["memory"] = m;
      return;
    }
    try {
      AttnProblem p(shape(n), kSeed);  // allocated and touched before the peak is reset
      const bool exact = reset_peak_rss();
      const int64_t before = exact ? peak_rss_bytes() : std::max(peak_rss_bytes(), current_rss_bytes());
      const std::optional<Timing> t = time_kernel([&] { forward(causal_spec(), p); }, 0, 1);
      const int64_t growth = std::max<int64_t>(0, peak_rss_bytes() - before);
      const double materialised = double(MaterialisedBaseline::score_bytes(n)) * double(kHeads);
      say("  q, k, v, o, lse buffers (not counted)   %s\n", human_bytes(double(p.forward_bytes())).c_str());
      say("  peak RSS growth during the call         %s  (%s)\n", human_bytes(double(growth)).c_str(),
          exact ? "VmHWM after resetting it via /proc/self/clear_refs"
                : "clear_refs not writable: lifetime peak of the process, so a lower bound");
      const double times = materialised / double(std::max<int64_t>(growth, 1));
      say("  materialised scores N^2 x heads x 4 B   %s  (%s the growth)\n",
          human_bytes(materialised).c_str(), num(times, times >= 100 ? "%.0fx" : "%.3gx").c_str());
      if (t)
        say("  time %.2f s, %.1f GFLOP/s useful\n", t->median_s,
            causal_forward_flops(n, kDim) * kHeads / t->median_s * 1e-9);
      m.update({{"buffers_bytes", p.forward_bytes()}, {"peak_growth_bytes", growth},
                {"method", exact ? "VmHWM reset via /proc/self/clear_refs" : "lifetime peak (lower bound)"},
                {"materialised_scores_bytes", materialised},
                {"seconds", t ? json(t->median_s) : json(nullptr)}});
    } catch (const std::bad_alloc&) {
      say("  skipped: not enough memory for the N = %lld buffers\n", (long long)n);
      m["error"] = "out of memory";
    }
    say("\n");
    j_["memory"] = m;
  }

  void forward_table() {
    say("causal forward: batch 1, %lld heads (%lld kv heads), head dim %lld\n", (long long)kHeads,
        (long long)kHeads, (long long)kDim);
    say("  useful FLOPs per head = 4*N*(N+1)/2*D (QK^T and PV over the visible half only)\n");
    say("  baseline = per head sgemm Q.K^T (masked half too), mask, softmax, sgemm P.V; f32\n");
    say("  %7s %-5s %12s %10s %12s %10s %9s %15s %9s\n", "N", "dtype", "baseline ms", "GFLOP/s",
        (std::string(impl_name_) + " ms").c_str(), "GFLOP/s", "of sgemm", "speed-up", "rel diff");
    json rows = json::array();
    for (int64_t n : opt_.sizes) rows.push_back(forward_row(n, DType::F32));
    rows.push_back(forward_row(ref_n_, DType::BF16));
    say("  speed-up = baseline ms / %s ms; rel diff = |o - o_baseline| / |o_baseline|\n\n", impl_name_);
    j_["forward"] = rows;

    Target t = make_target("forward speed-up over the materialised baseline at N=4096", 2.0, false);
    if (speedup_at_target_) t.value = *speedup_at_target_;
    else t.note = "not measured (needs 4096 in --sizes and the forward kernel)";
    targets_.push_back(t);
  }

  json forward_row(int64_t n, DType dtype) {
    const double flops = causal_forward_flops(n, kDim) * double(kHeads);
    AttnProblem p(shape(n, dtype), kSeed);
    std::unique_ptr<MaterialisedBaseline> baseline;
    std::string base_note;
    if (dtype == DType::F32 && MaterialisedBaseline::score_bytes(n) <= kBaselineMaxScoreBytes)
      baseline = std::make_unique<MaterialisedBaseline>(n, kHeads, kDim);
    else if (dtype == DType::F32)
      base_note = "skipped: score matrix " + human_bytes(double(MaterialisedBaseline::score_bytes(n)));
    std::vector<std::function<void()>> calls;
    if (baseline) calls.push_back([&] { baseline->run(p); });
    if (forward_ok_) calls.push_back([&] { forward(causal_spec(), p); });
    const std::vector<std::optional<Timing>> t = time_kernels(calls, 1, opt_.reps);
    const double own_base_s = baseline && t.front() ? t.front()->median_s : kNaN;
    const double flash_s = forward_ok_ && t.back() ? t.back()->median_s : kNaN;
    const int flash_reps = forward_ok_ && t.back() ? t.back()->reps : 0;
    if (!std::isnan(own_base_s)) baseline_s_[n] = own_base_s;

    // bf16 rows are compared with the f32 baseline of the same N.
    const double base_s = baseline_s_.count(n) ? baseline_s_[n] : kNaN;
    const double speedup = base_s / flash_s;
    const double diff =
        !std::isnan(flash_s) && !std::isnan(own_base_s) ? rel_diff(p.o, baseline->output()) : kNaN;
    if (!std::isnan(speedup) && n == kTargetN && dtype == DType::F32) speedup_at_target_ = speedup;

    const double base_rate = flops / own_base_s * 1e-9;
    const double rate = flops / flash_s * 1e-9;
    say("  %7lld %-5s %12s %10s %12s %10s %9s %15s %9s\n", (long long)n, dtype_name(dtype),
        dtype == DType::F32 ? num(base_s * 1e3, "%.2f").c_str() : "(f32)", num(base_rate, "%.1f").c_str(),
        num(flash_s * 1e3, "%.2f").c_str(), num(rate, "%.1f").c_str(),
        num(100.0 * rate / sgemm_gflops_, "%.0f%%").c_str(), num(speedup, "%.2fx").c_str(),
        num(diff, "%.1e").c_str());
    if (!base_note.empty()) say("          baseline %s\n", base_note.c_str());

    json row = {{"n", n}, {"dtype", dtype_name(dtype)}, {"useful_flops", flops}};
    row["baseline_seconds"] = num_or_null(own_base_s);
    if (!base_note.empty()) row["baseline_note"] = base_note;
    row["seconds"] = num_or_null(flash_s);
    row["reps"] = flash_reps;
    row["gflops"] = num_or_null(rate);
    row["fraction_of_sgemm"] = num_or_null(rate / sgemm_gflops_);
    row["speedup_vs_baseline"] = num_or_null(speedup);
    row["rel_diff_vs_baseline"] = num_or_null(diff);
    return row;
  }

  void extras_overhead() {
    const int64_t n = ref_n_;
    say("extras at N = %lld: sink logit + GOAT relative prior (rank %d) + key bias + ALiBi\n",
        (long long)n, AttnExtras::kGoatRank);
    Target t = make_target("extras overhead vs plain forward at N=" + std::to_string(n), 0.10, true, true);
    json e = {{"n", n}, {"goat_rank", AttnExtras::kGoatRank}};
    if (forward_ok_) {
      AttnProblem p(shape(n), kSeed);
      AttnExtras extras(p.shape(), kSeed + 7);
      const AttnSpec with_extras = extras.apply(causal_spec());
      const std::vector<std::optional<Timing>> times = time_kernels(
          {[&] { forward(causal_spec(), p); }, [&] { forward(with_extras, p); }}, 1, opt_.reps);
      const std::optional<Timing>& plain = times[0];
      const std::optional<Timing>& full = times[1];
      if (plain && full) {
        t.value = full->median_s / plain->median_s - 1.0;
        say("  plain %.2f ms, with extras %.2f ms: %+.1f%%\n", plain->median_s * 1e3,
            full->median_s * 1e3, 100.0 * *t.value);
        e.update({{"plain_seconds", plain->median_s}, {"extras_seconds", full->median_s},
                  {"overhead", *t.value}});
      }
    }
    if (!t.value) {
      t.note = "not measured (forward kernel)";
      say("  n/a\n");
    }
    say("\n");
    j_["extras"] = e;
    targets_.push_back(t);
  }

  void backward_ratio() {
    const int64_t n = ref_n_;
    say("backward at N = %lld: attention_backward with dq, dk, dv (f32)\n", (long long)n);
    Target t = make_target("backward / forward time at N=" + std::to_string(n), 3.0, true);
    json b = {{"n", n}};
    if (forward_ok_ && backward_ok_) {
      AttnProblem p(shape(n), kSeed);
      p.add_backward_buffers(kSeed + 9);
      const AttnSpec spec = causal_spec();
      const std::vector<std::optional<Timing>> times =
          time_kernels({[&] { forward(spec, p); }, [&] { backward(spec, p); }}, 1, opt_.reps);
      const std::optional<Timing>& fwd = times[0];
      const std::optional<Timing>& bwd = times[1];
      if (fwd && bwd) {
        t.value = bwd->median_s / fwd->median_s;
        say("  forward %.2f ms, backward %.2f ms: %.2fx (backward useful GFLOP/s %.1f at 2.5x forward FLOPs)\n",
            fwd->median_s * 1e3, bwd->median_s * 1e3, *t.value,
            2.5 * causal_forward_flops(n, kDim) * kHeads / bwd->median_s * 1e-9);
        b.update({{"forward_seconds", fwd->median_s}, {"backward_seconds", bwd->median_s},
                  {"ratio", *t.value}});
      }
    }
    if (!t.value) {
      t.note = "not measured (backward kernel)";
      say("  n/a\n");
    }
    say("\n");
    j_["backward"] = b;
    targets_.push_back(t);
  }

  void decode() {
    const int64_t keys = opt_.decode_keys;
    say("decode: 1 query x %lld heads against a %lld-key cache (f32), vs reading K and V once\n",
        (long long)kHeads, (long long)keys);
    say("  K+V read time = K+V bytes / measured copy bandwidth (%.1f GB/s)\n", copy_gbs_);
    json rows = json::array();
    for (int64_t kv_heads : {kHeads, int64_t(2)}) {
      ProblemShape s = shape(keys);
      s.kv_heads = kv_heads;
      s.n_q = 1;
      const std::string label = kv_heads == kHeads ? std::to_string(kHeads) + " kv heads"
                                                   : "GQA " + std::to_string(kHeads) + ":" +
                                                         std::to_string(kv_heads);
      Target t = make_target("decode time / K+V read time, " + label, 2.0, true);
      json row = {{"kv_heads", kv_heads}, {"keys", keys}};
      if (forward_ok_) {
        AttnProblem p(s, kSeed);
        const double read_s = double(p.kv_bytes()) / (copy_gbs_ * 1e9);
        const std::optional<Timing> d =
            time_kernel([&] { forward(causal_spec(), p); }, 2, std::max(opt_.reps, 10));
        if (d) {
          t.value = d->median_s / read_s;
          say("  %-12s K+V %s: %.3f ms, read time %.3f ms: %.2fx (%.1f GB/s of K+V)\n", label.c_str(),
              human_bytes(double(p.kv_bytes())).c_str(), d->median_s * 1e3, read_s * 1e3, *t.value,
              double(p.kv_bytes()) / d->median_s * 1e-9);
          row.update({{"kv_bytes", p.kv_bytes()}, {"seconds", d->median_s}, {"reps", d->reps},
                      {"kv_read_seconds", read_s}, {"ratio", *t.value}});
        }
      }
      if (!t.value) {
        t.note = "not measured (forward kernel)";
        say("  %-12s n/a\n", label.c_str());
      }
      rows.push_back(row);
      targets_.push_back(t);
    }
    say("\n");
    j_["decode"] = rows;
  }

  void summary() {
    say("targets\n");
    json list = json::array();
    for (const Target& t : targets_) {
      char value[32] = "n/a", limit[32];
      if (t.value)
        std::snprintf(value, sizeof value, t.percent ? "%+.1f%%" : "%.2fx",
                      t.percent ? 100.0 * *t.value : *t.value);
      std::snprintf(limit, sizeof limit, t.percent ? "%s %.0f%%" : "%s %.1fx", t.at_most ? "<=" : ">=",
                    t.percent ? 100.0 * t.limit : t.limit);
      say("  %-58s %9s  target %-8s %s\n", t.what.c_str(), value, limit, t.status().c_str());
      list.push_back(t.to_json());
    }
    say("  (targets are reported, never enforced; n/a = not measured in this run)\n");
    j_["targets"] = list;
    j_["errors"] = errors_;
  }

  void write_json() {
    json_out_ << j_.dump(2) << "\n";
    json_out_.close();
    check(bool(json_out_), "bench: failed writing --json file " + opt_.json_path);
    say("wrote %s\n", opt_.json_path.c_str());
  }

  const SuiteOptions& opt_;
  const char* impl_name_;
  int64_t ref_n_ = kTargetN;
  json j_;
  std::ofstream json_out_;
  std::vector<Target> targets_;
  std::vector<std::string> errors_;
  double sgemm_gflops_ = 0, copy_gbs_ = 0;
  bool forward_ok_ = false, backward_ok_ = false;
  std::map<int64_t, double> baseline_s_;
  std::optional<double> speedup_at_target_;
};

}  // namespace

void run_attention_suite(const SuiteOptions& options) {
  check(!options.sizes.empty(), "bench: --sizes needs at least one N");
  for (int64_t n : options.sizes) check(n > 0, "bench: every --sizes entry must be positive");
  check(options.reps >= 1, "bench: --reps must be at least 1");
  SuiteOptions o = options;
  std::sort(o.sizes.begin(), o.sizes.end());
  o.sizes.erase(std::unique(o.sizes.begin(), o.sizes.end()), o.sizes.end());
  set_threads(o.threads);
  Suite(o).run();
}

}  // namespace sinklab::bench
