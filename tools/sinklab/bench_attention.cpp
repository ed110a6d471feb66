// `sinklab bench`: benchmarks that report numbers and targets, never fail on
// them. `bench attention` measures the attention kernels; further benchmarks
// (e.g. `bench model`) join as sibling subcommands here.
#include <functional>
#include <memory>
#include <string>

#include "output_guard.h"
#include "bench_harness.h"
#include "commands.h"

namespace sinklab::cli {

// `bench model` (bench_model.cpp): registers itself on `bench` and sets `run`.
CLI::App* add_bench_model(CLI::App& bench, std::function<int()>& run);
// `bench stream` (bench_stream.cpp): the same.
CLI::App* add_bench_stream(CLI::App& bench, std::function<int()>& run);
// `bench train` (bench_train.cpp): the same.
CLI::App* add_bench_train(CLI::App& bench, std::function<int()>& run);

namespace {

constexpr const char* kAttentionFooter = R"(What it measures (batch 1, 8 heads, head dim 128, causal, f32 unless noted):
  machine        sgemm GFLOP/s (OpenBLAS, 2048^3, all threads) and memory copy
                 GB/s (512 MiB copied with non-temporal stores, two streams per
                 thread; bytes read + bytes written).
  forward table  for each N: the materialised baseline (per head sgemm Q.K^T
                 including the masked half, mask, row softmax, sgemm P.V) and
                 the flash kernel; useful FLOPs = 4*N*(N+1)/2*128 per head (the
                 visible half only), GFLOP/s, fraction of the sgemm rate,
                 speed-up = baseline time / flash time; plus bf16 inputs at 4096.
  extras         sink logit + GOAT prior (rank 16) + key bias + ALiBi vs plain.
  backward       attention_backward (dq, dk, dv) time / forward time.
  decode         1 query x 8 heads against a 65536-key cache, 8 kv heads and
                 GQA 8:2: time / (K+V bytes / copy bandwidth).
  memory         peak RSS growth during one forward at N = 65536 beyond the
                 q, k, v, o, lse buffers, vs a materialised N^2 x 8 x 4 B.
Targets (reported as PASS/MISS, never an error): speed-up >= 2x at N = 4096,
extras <= +10%, backward/forward <= 3x, decode <= 2x the K+V read time.
Every timing: 1 warm-up, then the median of --reps runs (at most 3 when one
call takes over 5 s). See bench/README.md.)";

struct BenchAttentionFlags {
  CLI::App* app = nullptr;
  bool quick = false;
  std::vector<int64_t> sizes;
  int reps = 5;
  int threads = 0;
  int64_t memory_n = 65536;
  int64_t decode_keys = 65536;
  std::string impl = "flash";
  std::string json_path;
  OutputGuard guard;
};

CLI::App* add_attention(CLI::App& bench, BenchAttentionFlags& f) {
  CLI::App* a = bench.add_subcommand(
      "attention",
      "Time the attention kernels against a materialised BLAS baseline, the sgemm rate and "
      "the memory bandwidth measured in the same run; print a table and the targets");
  a->add_flag("--quick", f.quick,
              "Fast run for a first look (under a minute): N = 1024,4096, 3 reps, no N = 65536 "
              "working-memory run; --sizes, --reps, --memory-n given explicitly still apply");
  a->add_option("--sizes", f.sizes, "Comma-separated N of the forward table (default 1024,4096,16384)")
      ->delimiter(',')
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  a->add_option("--reps", f.reps, "Timed repetitions per measurement, median reported (default 5)")
      ->check(CLI::Range(1, 1000));
  add_threads_flag(*a, f.threads);
  a->add_option("--memory-n", f.memory_n,
                "N of the working-memory run; 0 skips it (default 65536, --quick: 0)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 20));
  a->add_option("--decode-keys", f.decode_keys, "Keys in the decode cache; 0 skips decode (default 65536)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 26));
  a->add_option("--impl", f.impl,
                "Kernel to time: flash, or reference (the float64 oracle; only to check the "
                "harness at small N) (default flash)")
      ->check(CLI::IsMember({"flash", "reference"}));
  a->add_option("--json", f.json_path, "Also write every number to this JSON file");
  f.guard.add_force_flag(*a);
  a->footer(kAttentionFooter);
  return a;
}

// The command line as it would be retyped, for the report.
std::string command_line(const BenchAttentionFlags& f) {
  std::string cmd = "sinklab bench attention";
  if (f.quick) cmd += " --quick";
  if (f.app->count("--sizes")) {
    cmd += " --sizes ";
    for (size_t i = 0; i < f.sizes.size(); ++i) cmd += (i ? "," : "") + std::to_string(f.sizes[i]);
  }
  if (f.app->count("--reps")) cmd += " --reps " + std::to_string(f.reps);
  if (f.app->count("--threads")) cmd += " --threads " + std::to_string(f.threads);
  if (f.app->count("--memory-n")) cmd += " --memory-n " + std::to_string(f.memory_n);
  if (f.app->count("--decode-keys")) cmd += " --decode-keys " + std::to_string(f.decode_keys);
  if (f.app->count("--impl")) cmd += " --impl " + f.impl;
  if (f.app->count("--json")) cmd += " --json " + f.json_path;
  return cmd;
}

int run_attention(const BenchAttentionFlags& f) {
  if (!f.json_path.empty()) f.guard.check_file(f.json_path, "--json");
  bench::SuiteOptions o;
  o.quick = f.quick;
  if (f.quick) {
    o.sizes = {1024, 4096};
    o.reps = 3;
    o.memory_n = 0;
  }
  if (f.app->count("--sizes")) o.sizes = f.sizes;
  if (f.app->count("--reps")) o.reps = f.reps;
  if (f.app->count("--memory-n")) o.memory_n = f.memory_n;
  o.threads = f.threads;
  o.decode_keys = f.decode_keys;
  o.impl = f.impl == "reference" ? AttnImpl::Reference : AttnImpl::Flash;
  o.json_path = f.json_path;
  o.command = command_line(f);
  bench::run_attention_suite(o);
  return 0;
}

}  // namespace

Command bench_command() {
  auto attention = std::make_shared<BenchAttentionFlags>();
  struct ModelBench {
    CLI::App* app = nullptr;
    std::function<int()> run;
  };
  auto model = std::make_shared<ModelBench>();
  auto stream = std::make_shared<ModelBench>();
  auto train = std::make_shared<ModelBench>();
  Command c;
  c.add = [attention, model, stream, train](CLI::App& app) {
    CLI::App* bench = app.add_subcommand(
        "bench",
        "Benchmarks: `bench attention` times the attention kernels, `bench model` the decoder "
        "forward, `bench stream` a sink cache over a long stream, `bench train` training throughput "
        "(see their --help)");
    bench->require_subcommand(1, 1);
    attention->app = add_attention(*bench, *attention);
    model->app = add_bench_model(*bench, model->run);
    stream->app = add_bench_stream(*bench, stream->run);
    train->app = add_bench_train(*bench, train->run);
    return bench;
  };
  c.run = [attention, model, stream, train]() -> int {
    if (attention->app->parsed()) return run_attention(*attention);
    if (model->app->parsed()) return model->run();
    if (stream->app->parsed()) return stream->run();
    if (train->app->parsed()) return train->run();
    return 1;  // unreachable: CLI11 requires one bench subcommand
  };
  return c;
}

}  // namespace sinklab::cli
