// `sinklab bench stream`: what a sink cache promises over an unbounded stream.
//   flat     tokens streamed one at a time through a sink cache (S + W); at
//            each mark the median per-token latency of the tokens around it and
//            the resident memory (VmRSS); ratios last / first.
//   speed-up per cache size L: sink (S = 4, W = L - 4) against the recompute
//            baseline that re-encodes the L cached tokens for every token
//            (`sinklab ppl --recompute`), both timed once the cache is full.
// Numbers are reported, never judged.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "output_guard.h"
#include "bench_harness.h"
#include "commands.h"
#include "model_args.h"
#include "sinklab/model.h"
#include "sinklab/perplexity.h"

namespace sinklab::cli {

namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

struct BenchStreamFlags {
  CLI::App* app = nullptr;
  ModelArgs model;
  std::string text;
  bool random_ids = false;
  bool quick = false;
  int64_t sink = 4;
  int64_t window = 252;
  std::vector<int64_t> marks{1000, 10000, 100000, 1000000};
  int64_t latency_tokens = 256;
  std::vector<int64_t> windows{256, 1024, 4096};
  int64_t sink_tokens = 256;
  int64_t recompute_tokens = 0;  // 0 = by cache size
  int threads = 1;
  std::string json_path;
  OutputGuard guard;
};

constexpr const char* kFooter = R"(What it measures (batch 1, one Session, f32 KV cache, reindex positions):
  tokens    the text (-f, default the stories text of the assets) tokenized once
            and repeated, or --random-ids (uniform ids, seed 1); which one is
            printed and written to the JSON.
  flat      one Session with cache sink:sink=S,window=W fed one token per call;
            latency = time of feed() for one token; at each mark M the median
            over the --latency-tokens tokens centred on M; "fresh": a second
            Session refilled with S + W + 16 tokens before each window and fed
            one token after every timed token, so latency / fresh cancels load
            changes between marks; memory = VmRSS from /proc/self/status read
            after token M (outside any timed call).
  speed-up  per cache size L in --windows: a sink cache (S = 4, W = L - 4) fed
            L + 16 tokens, then --sink-tokens single-token feeds timed; the
            recompute baseline (a dense Session reset and fed the L tokens the
            same policy keeps, as `sinklab ppl --recompute`) timed for
            --recompute-tokens predictions (default 64 / 16 / 4 for L <= 256 /
            1024 / larger); both medians per predicted token.)";

CLI::App* add_flags(CLI::App& bench, BenchStreamFlags& f) {
  CLI::App* a = bench.add_subcommand(
      "stream",
      "Per-token latency and resident memory of a sink cache over a long stream, and the speed-up "
      "of the sink cache over re-encoding the window for every token");
  add_model_flags(*a, f.model, /*with_dtype=*/false);
  a->add_option("-f,--file", f.text,
                 "Text whose tokens are streamed (repeated as needed); default text/tinystories_sample.txt of "
                 "the shared assets: ../shared/assets beside the source tree, or the folder $SINKLAB_ASSETS names");
  a->add_flag("--random-ids", f.random_ids, "Stream uniform random token ids instead of a text");
  a->add_flag("--quick", f.quick,
              "Small run (seconds): marks 1000,10000, windows 256,1024, 4 recompute tokens; flags "
              "given explicitly still apply");
  a->add_option("--sink", f.sink, "Sink tokens S of the streamed cache (default 4)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 20));
  a->add_option("--window", f.window, "Window tokens W of the streamed cache (default 252)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  a->add_option("--marks", f.marks, "Comma-separated stream lengths to report (default 1000,10000,100000,1000000)")
      ->delimiter(',')
      ->check(CLI::Range(int64_t(1), int64_t(1) << 32));
  a->add_option("--latency-tokens", f.latency_tokens, "Tokens around each mark whose median latency is reported (default 256)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  a->add_option("--windows", f.windows, "Comma-separated cache sizes L of the speed-up table (default 256,1024,4096)")
      ->delimiter(',')
      ->check(CLI::Range(int64_t(8), int64_t(1) << 20));
  a->add_option("--sink-tokens", f.sink_tokens, "Timed tokens of the sink cache per cache size (default 256)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  a->add_option("--recompute-tokens", f.recompute_tokens,
                "Timed predictions of the recompute baseline per cache size; 0 = 64 / 16 / 4 by size (default 0)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 20));
  add_threads_flag(*a, f.threads);
  a->add_option("--json", f.json_path, "Also write every number to this JSON file");
  f.guard.add_force_flag(*a);
  a->footer(kFooter);
  return a;
}

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

std::string command_line(const BenchStreamFlags& f) {
  std::string cmd = "sinklab bench stream";
  const CLI::App& a = *f.app;
  if (a.count("-m")) cmd += " -m " + f.model.model_path;
  if (a.count("--tokenizer")) cmd += " --tokenizer " + f.model.tokenizer_path;
  if (a.count("-f")) cmd += " -f " + f.text;
  if (f.random_ids) cmd += " --random-ids";
  if (f.quick) cmd += " --quick";
  if (a.count("--sink")) cmd += " --sink " + std::to_string(f.sink);
  if (a.count("--window")) cmd += " --window " + std::to_string(f.window);
  if (a.count("--marks")) cmd += " --marks " + join(f.marks);
  if (a.count("--latency-tokens")) cmd += " --latency-tokens " + std::to_string(f.latency_tokens);
  if (a.count("--windows")) cmd += " --windows " + join(f.windows);
  if (a.count("--sink-tokens")) cmd += " --sink-tokens " + std::to_string(f.sink_tokens);
  if (a.count("--recompute-tokens")) cmd += " --recompute-tokens " + std::to_string(f.recompute_tokens);
  if (a.count("--threads")) cmd += " --threads " + std::to_string(f.threads);
  if (a.count("--json")) cmd += " --json " + f.json_path;
  return cmd;
}

fs::path assets_dir() {
  if (const char* env = std::getenv("SINKLAB_ASSETS"); env && *env) return env;
  return fs::path(SINKLAB_SOURCE_DIR).parent_path() / "shared" / "assets";
}

// The token ids that are streamed, repeated to any length.
struct TokenSource {
  std::vector<int32_t> ids;
  std::string description;
  int32_t at(int64_t i) const { return ids[size_t(i % int64_t(ids.size()))]; }
};

TokenSource make_source(const BenchStreamFlags& f, const Model& model) {
  TokenSource s;
  if (f.random_ids) {
    std::mt19937 rng(1);
    s.ids.resize(65536);
    for (int32_t& x : s.ids) x = int32_t(rng() % uint32_t(model.config().vocab));
    s.description = "uniform random ids (seed 1, period 65536)";
    return s;
  }
  const std::string path =
      f.text.empty() ? (assets_dir() / "text" / "tinystories_sample.txt").string() : f.text;
  check(fs::is_regular_file(path), "-f: cannot read text file '" + path + "' (pass -f FILE or --random-ids)");
  check(model.tokenizer() != nullptr,
        "no tokenizer found beside model '" + model.path() + "': pass --tokenizer or --random-ids");
  TextFileEncoding how;
  how.add_bos = true;
  how.what = "-f: text file";
  s.ids = encode_text_file(*model.tokenizer(), path, how).ids;
  check(s.ids.size() >= 2, "-f: text file '" + path + "' has fewer than 2 tokens");
  s.description = "text " + path + " (" + std::to_string(s.ids.size()) + " tokens, repeated)";
  return s;
}

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

std::string sink_spec(int64_t sink, int64_t window) {
  return "sink:sink=" + std::to_string(sink) + ",window=" + std::to_string(window);
}

struct Mark {
  int64_t tokens = 0;
  double latency_us = 0;      // median
  double latency_min_us = 0;  // fastest token of the same window (least disturbed by other load)
  double fresh_us = 0;        // median of a freshly filled cache, timed in turn with the same tokens
  double rss_mib = 0;
};

// Streams tokens one at a time and measures around every mark. In each
// window a second Session, refilled just before it (S + W + 16 tokens), takes
// one token after every token of the long stream: the ratio of the two
// medians cancels changes in machine load between marks.
std::vector<Mark> run_flat(const std::shared_ptr<const Model>& model, const TokenSource& src,
                           const BenchStreamFlags& f) {
  SessionOptions so;
  so.cache = sink_spec(f.sink, f.window);
  Session session(model, so), fresh(model, so);
  std::vector<int32_t> fill(static_cast<size_t>(f.sink + f.window + 16));
  for (size_t i = 0; i < fill.size(); ++i) fill[i] = src.at(int64_t(i));
  int64_t fresh_next = 0;
  std::vector<double> fresh_lat;
  fresh_lat.reserve(size_t(f.latency_tokens));
  std::vector<Mark> marks;
  for (int64_t m : f.marks) marks.push_back({m, 0, 0, 0, 0});
  const int64_t half = f.latency_tokens / 2;
  const int64_t end = f.marks.back() + (f.latency_tokens - half);
  std::vector<double> lat;  // latencies of the current mark's window
  lat.reserve(size_t(f.latency_tokens));
  size_t next = 0;  // the mark whose window is being filled
  for (int64_t i = 0; i < end && next < marks.size(); ++i) {
    const int32_t id = src.at(i);
    const auto t0 = clock_type::now();
    session.feed(std::span<const int32_t>(&id, 1));
    const double dt = seconds_since(t0);
    const int64_t streamed = i + 1;
    const int64_t lo = marks[next].tokens - half, hi = lo + f.latency_tokens;
    if (streamed > lo && streamed <= hi) {
      lat.push_back(dt);
      if (fresh_next == 0) {
        fresh.reset();
        fresh.feed(fill);
        fresh_next = int64_t(fill.size());
      }
      const int32_t fid = src.at(fresh_next++);
      const auto t1 = clock_type::now();
      fresh.feed(std::span<const int32_t>(&fid, 1));
      fresh_lat.push_back(seconds_since(t1));
    }
    if (streamed == marks[next].tokens) marks[next].rss_mib = double(bench::current_rss_bytes()) / double(1 << 20);
    if (streamed >= hi) {
      marks[next].latency_us = median(lat) * 1e6;
      marks[next].latency_min_us = *std::min_element(lat.begin(), lat.end()) * 1e6;
      marks[next].fresh_us = median(fresh_lat) * 1e6;
      lat.clear();
      fresh_lat.clear();
      fresh_next = 0;
      std::printf("%12lld %14.2f %14.2f %14.2f %12.3f %10.1f\n", (long long)marks[next].tokens,
                  marks[next].latency_us, marks[next].latency_min_us, marks[next].fresh_us,
                  marks[next].latency_us / marks[next].fresh_us, marks[next].rss_mib);
      std::fflush(stdout);
      ++next;
    }
  }
  return marks;
}

struct Speedup {
  int64_t cache = 0;
  double sink_us = 0, recompute_us = 0;
  int64_t sink_tokens = 0, recompute_tokens = 0;
};

Speedup run_speedup(const std::shared_ptr<const Model>& model, const TokenSource& src, int64_t cache,
                    const BenchStreamFlags& f) {
  Speedup r;
  r.cache = cache;
  r.sink_tokens = f.sink_tokens;
  r.recompute_tokens = f.recompute_tokens > 0 ? f.recompute_tokens : (cache <= 256 ? 64 : cache <= 1024 ? 16 : 4);
  const int64_t start = cache + 16;  // the cache is full and has evicted
  std::vector<int32_t> ids(size_t(start + std::max(r.sink_tokens, r.recompute_tokens) + 1));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = src.at(int64_t(i));

  // The same perplexity step `sinklab ppl` runs, streaming and under recompute
  // (the policy decides the survivors; a dense Session re-encodes them at
  // positions 0..n-1 for every prediction), each timed once warm.
  auto time_steps = [&](bool recompute, int64_t steps) {
    PerplexityOptions o;
    o.cache = sink_spec(4, cache - 4);
    o.recompute = recompute;
    PerplexityRunner runner(model, ids, o);
    runner.skip(start);
    std::vector<double> t;
    for (int64_t i = 0; i < steps; ++i) {
      const auto t0 = clock_type::now();
      runner.step(start + i, TokenMeta{start + i, 0, 0});
      t.push_back(seconds_since(t0));
    }
    return median(t) * 1e6;
  };
  r.sink_us = time_steps(false, r.sink_tokens);
  r.recompute_us = time_steps(true, r.recompute_tokens);
  return r;
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return in ? a + " " + b + " " + c : "unknown";
}

int run_bench_stream(BenchStreamFlags f) {
  if (!f.json_path.empty()) f.guard.check_file(f.json_path, "--json");
  if (f.quick) {
    if (!f.app->count("--marks")) f.marks = {1000, 10000};
    if (!f.app->count("--windows")) f.windows = {256, 1024};
    if (!f.app->count("--recompute-tokens")) f.recompute_tokens = 4;
    if (!f.app->count("--sink-tokens")) f.sink_tokens = 64;
  }
  check(!(f.random_ids && f.app->count("-f")), "-f and --random-ids exclude each other");
  check(std::is_sorted(f.marks.begin(), f.marks.end()) &&
            std::adjacent_find(f.marks.begin(), f.marks.end()) == f.marks.end(),
        "--marks must be strictly increasing (got " + join(f.marks) + ")");
  for (size_t i = 1; i < f.marks.size(); ++i)
    check(f.marks[i] - f.marks[i - 1] >= f.latency_tokens,
          "--marks " + join(f.marks) + ": marks must lie at least --latency-tokens " +
              std::to_string(f.latency_tokens) + " apart");
  bench::set_threads(f.threads);
  ModelArgs margs = f.model;
  if (margs.model_path.empty())
    margs.model_path = (assets_dir() / "models" / "stories260K" / "stories260K.bin").string();
  const std::shared_ptr<const Model> model = load_model(margs);
  const TokenSource src = make_source(f, *model);
  const std::string cmd = command_line(f);
  const std::string load_before = load_average();
  std::printf("%s\n", cmd.c_str());
  std::printf("model: %s (%s, %lld layers, dim %lld); threads %d; load average %s\n", model->path().c_str(),
              model->config().arch.c_str(), (long long)model->config().n_layers, (long long)model->config().dim,
              bench::threads(), load_before.c_str());
  std::printf("tokens: %s\n\n", src.description.c_str());
  std::printf("flat: cache %s, one token per feed(); median latency of the %lld tokens around each mark\n",
              sink_spec(f.sink, f.window).c_str(), (long long)f.latency_tokens);
  std::printf("%12s %14s %14s %14s %12s %10s\n", "streamed", "median us", "min us", "fresh us", "vs fresh", "rss MiB");
  std::fflush(stdout);
  const std::vector<Mark> marks = run_flat(model, src, f);
  const double lat_ratio = marks.back().latency_us / marks.front().latency_us;
  const double rss_ratio = marks.back().rss_mib / marks.front().rss_mib;
  const double rel_ratio = (marks.back().latency_us / marks.back().fresh_us) /
                           (marks.front().latency_us / marks.front().fresh_us);
  std::printf("last / first: latency %.3fx (%.3fx relative to a fresh cache timed in turn), rss %.3fx\n\n",
              lat_ratio, rel_ratio, rss_ratio);

  std::printf("speed-up: sink (S = 4, W = L - 4) vs recompute (re-encode the L cached tokens per token)\n");
  std::printf("%8s %14s %18s %10s\n", "cache L", "sink us/tok", "recompute us/tok", "speed-up");
  std::fflush(stdout);
  std::vector<Speedup> speedups;
  for (int64_t L : f.windows) {
    const Speedup s = run_speedup(model, src, L, f);
    std::printf("%8lld %14.2f %18.1f %9.1fx\n", (long long)L, s.sink_us, s.recompute_us, s.recompute_us / s.sink_us);
    std::fflush(stdout);
    speedups.push_back(s);
  }
  const std::string load_after = load_average();
  std::printf("load average at the end: %s\n", load_after.c_str());

  if (!f.json_path.empty()) {
    nlohmann::ordered_json j = {{"command", cmd},
                                {"model", model->path()},
                                {"threads", bench::threads()},
                                {"load_average_before", load_before},
                                {"load_average_after", load_after},
                                {"tokens_source", src.description},
                                {"random_ids", f.random_ids},
                                {"flat", {{"cache", sink_spec(f.sink, f.window)}, {"latency_tokens", f.latency_tokens}}},
                                {"latency_ratio_last_first", lat_ratio},
                                {"latency_vs_fresh_ratio_last_first", rel_ratio},
                                {"rss_ratio_last_first", rss_ratio}};
    for (const Mark& m : marks)
      j["flat"]["marks"].push_back({{"tokens", m.tokens},
                                    {"latency_us", m.latency_us},
                                    {"latency_min_us", m.latency_min_us},
                                    {"fresh_latency_us", m.fresh_us},
                                    {"rss_mib", m.rss_mib}});
    j["speedup"] = nlohmann::ordered_json::array();
    for (const Speedup& s : speedups)
      j["speedup"].push_back({{"cache", s.cache},
                              {"sink_us_per_token", s.sink_us},
                              {"recompute_us_per_token", s.recompute_us},
                              {"speedup", s.recompute_us / s.sink_us},
                              {"sink_tokens_timed", s.sink_tokens},
                              {"recompute_tokens_timed", s.recompute_tokens}});
    write_output_text(f.json_path, j.dump(2) + "\n", "--json");
    std::printf("wrote %s\n", f.json_path.c_str());
  }
  return 0;
}

}  // namespace

CLI::App* add_bench_stream(CLI::App& bench, std::function<int()>& run) {
  auto f = std::make_shared<BenchStreamFlags>();
  f->app = add_flags(bench, *f);
  run = [f]() { return run_bench_stream(*f); };
  return f->app;
}

}  // namespace sinklab::cli
