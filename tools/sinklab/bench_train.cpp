// `sinklab bench train`: training throughput (tokens/s) of `sinklab train`'s
// decoder and its useful-FLOP rate as a fraction of the sgemm rate measured in
// the same run. Random weights and tokens; one AdamW step per timed call.
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "output_guard.h"
#include "bench_harness.h"
#include "commands.h"
#include "sinklab/train.h"

namespace sinklab::cli {

namespace {

constexpr const char* kTrainFooter = R"(What it measures: one training step (forward, backward, AdamW) of a
Llama-shaped decoder on random tokens, median of --reps steps after a warm-up.
Useful FLOPs per step = 6 x (matrix parameters incl. the classifier) x tokens
+ 3 x the causal attention forward FLOPs (forward + 2x for the backward, no
recomputation counted). The sgemm rate is measured in the same run with the
same threads. Target: >= 30% of the sgemm rate.)";

struct BenchTrainFlags {
  CLI::App* app = nullptr;
  int64_t dim = 512, layers = 4, heads = 8, kv_heads = 8, seq = 256, batch = 8, vocab = 4096;
  std::string variant = "vanilla";
  int reps = 5;
  int threads = 0;
  bool quick = false;
  std::string json;
  OutputGuard guard;
};

int run_bench_train(const BenchTrainFlags& f) {
  if (!f.json.empty()) f.guard.check_file(f.json, "--json");
  bench::set_threads(f.threads);
  TrainModelConfig mc;
  mc.vocab = f.quick ? 1024 : f.vocab;
  mc.dim = f.quick ? 128 : f.dim;
  mc.n_layers = f.quick ? 2 : f.layers;
  mc.n_heads = f.quick ? 4 : f.heads;
  mc.n_kv_heads = f.quick ? 4 : f.kv_heads;
  mc.seq_len = f.quick ? 64 : f.seq;
  mc.variant = attn_variant_from_name(f.variant);
  if (mc.variant == AttnVariant::Goat || mc.variant == AttnVariant::Alibi) mc.rope = false;
  const int64_t B = f.quick ? 4 : f.batch, T = mc.seq_len;
  TrainModel model(mc, 1);
  TrainOptions o;
  Optimizer opt(model, o);
  std::mt19937 rng(2);
  std::vector<int32_t> in(size_t(B * T)), tg(size_t(B * T));
  for (auto& x : in) x = int32_t(rng() % uint32_t(mc.vocab));
  for (auto& x : tg) x = int32_t(rng() % uint32_t(mc.vocab));
  auto step = [&] {
    model.zero_grad();
    int64_t n = 0;
    model.forward_backward(in.data(), tg.data(), B, T, 1.f / float(B * T), &n);
    clip_grad_norm(model.grads(), 1.0);
    opt.step(model, 1e-4f);
  };
  const int reps = f.quick ? 2 : f.reps;
  const bench::SgemmRate sgemm = bench::measure_sgemm(f.quick ? 512 : 2048, f.quick ? 2 : 5);
  const bench::Timing t = bench::time_median(step, 1, reps);
  const double tokens = double(B * T);
  const double attn = double(mc.n_layers) * double(mc.n_heads) * double(B) *
                      bench::causal_forward_flops(T, mc.head_dim());
  const double flops = 6.0 * double(model.n_matmul_params()) * tokens + 3.0 * attn;
  const double gflops = flops / t.median_s / 1e9;
  const double frac = gflops / sgemm.gflops;
  std::printf("bench train: %s, dim %lld, %lld layers, %lld/%lld heads, vocab %lld, batch %lld x %lld, %d threads\n",
              f.variant.c_str(), (long long)mc.dim, (long long)mc.n_layers, (long long)mc.n_heads,
              (long long)mc.n_kv_heads, (long long)mc.vocab, (long long)B, (long long)T, bench::threads());
  std::printf("  parameters          %.2fM (matrices incl. classifier %.2fM)\n", double(model.n_params()) / 1e6,
              double(model.n_matmul_params()) / 1e6);
  std::printf("  sgemm               %.1f GFLOP/s (%d^3)\n", sgemm.gflops, sgemm.n);
  std::printf("  step                %.1f ms (median of %d)\n", t.median_s * 1e3, t.reps);
  std::printf("  tokens/s            %.0f\n", tokens / t.median_s);
  std::printf("  useful GFLOP/s      %.1f = %.1f%% of sgemm  [target >= 30%%: %s]\n", gflops, 100 * frac,
              frac >= 0.30 ? "PASS" : "MISS");
  if (!f.json.empty()) {
    nlohmann::json j = {{"variant", f.variant}, {"dim", mc.dim}, {"layers", mc.n_layers}, {"heads", mc.n_heads},
                        {"kv_heads", mc.n_kv_heads}, {"vocab", mc.vocab}, {"batch", B}, {"seq", T},
                        {"threads", bench::threads()}, {"params", model.n_params()},
                        {"step_ms", t.median_s * 1e3}, {"tokens_per_s", tokens / t.median_s},
                        {"useful_gflops", gflops}, {"sgemm_gflops", sgemm.gflops}, {"fraction_of_sgemm", frac}};
    write_output_text(f.json, j.dump(2) + "\n", "--json");
  }
  return 0;
}

}  // namespace

CLI::App* add_bench_train(CLI::App& bench, std::function<int()>& run) {
  auto f = std::make_shared<BenchTrainFlags>();
  CLI::App* a = bench.add_subcommand("train", "Training throughput and useful-FLOP rate vs sgemm");
  a->footer(kTrainFooter);
  a->add_option("--dim", f->dim, "Model width (default 512)")->check(CLI::PositiveNumber);
  a->add_option("--layers", f->layers, "Layers (default 4)")->check(CLI::PositiveNumber);
  a->add_option("--heads", f->heads, "Heads (default 8)")->check(CLI::PositiveNumber);
  a->add_option("--kv-heads", f->kv_heads, "KV heads (default 8)")->check(CLI::PositiveNumber);
  a->add_option("--seq", f->seq, "Training length T (default 256)")->check(CLI::PositiveNumber);
  a->add_option("--batch", f->batch, "Sequences per step (default 8)")->check(CLI::PositiveNumber);
  a->add_option("--vocab", f->vocab, "Vocabulary (default 4096)")->check(CLI::PositiveNumber);
  a->add_option("--variant", f->variant, "Attention variant (default vanilla)");
  a->add_option("--reps", f->reps, "Timed steps (default 5)")->check(CLI::PositiveNumber);
  add_threads_flag(*a, f->threads);
  a->add_flag("--quick", f->quick, "A tiny model and 2 steps (smoke run)");
  a->add_option("--json", f->json, "Write the results to this JSON file");
  f->guard.add_force_flag(*a);
  run = [f]() { return run_bench_train(*f); };
  return a;
}

}  // namespace sinklab::cli
