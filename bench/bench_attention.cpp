// Google Benchmark programs for the attention kernels: flash forward,
// backward and decode, the materialised BLAS baseline, and the machine's
// sgemm and copy rates, with FLOP/s, items/s and bytes/s counters.
// `sinklab bench attention` turns the same measurements into ratios and
// targets; this program is for looking at one case at a time.
//
// Problems: batch 1, 8 heads, head dim 128, causal, f32 unless named.
// FLOP/s counts useful FLOPs: 4*N*(N+1)/2*D per head for a forward (the
// visible half of QK^T and PV); a backward counts 2.5x the forward.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <cstring>

#include "bench_harness.h"

namespace {

using sinklab::AttnImpl;
using sinklab::DType;
namespace sb = sinklab::bench;

constexpr int64_t kHeads = 8;
constexpr int64_t kDim = 128;
constexpr int64_t kDecodeKeys = 65536;
constexpr uint64_t kSeed = 7;

sb::ProblemShape shape(int64_t n, DType dtype = DType::F32) {
  sb::ProblemShape s;
  s.heads = s.kv_heads = kHeads;
  s.n_q = s.n_k = n;
  s.dim = kDim;
  s.dtype = dtype;
  return s;
}

// One untimed call first (a warm-up that also checks the kernel exists): a
// sinklab::Error skips the benchmark with its message instead of aborting.
template <class Call>
void run_loop(benchmark::State& state, Call&& call) {
  try {
    call();
  } catch (const sinklab::Error& e) {
    state.SkipWithError(e.what());
    return;
  }
  for (auto _ : state) call();
}

void count_flops(benchmark::State& state, double flops_per_call) {
  state.counters["FLOP/s"] = benchmark::Counter(flops_per_call, benchmark::Counter::kIsIterationInvariantRate);
}

void forward(const sinklab::AttnSpec& spec, sb::AttnProblem& p) {
  sinklab::attention_forward(spec, p.q, p.k, p.v, p.o, p.lse, nullptr, AttnImpl::Flash);
}

void BM_FlashForward(benchmark::State& state) {
  const int64_t n = state.range(0);
  sb::AttnProblem p(shape(n), kSeed);
  run_loop(state, [&] { forward(sb::causal_spec(), p); });
  count_flops(state, sb::causal_forward_flops(n, kDim) * kHeads);
  state.SetItemsProcessed(state.iterations() * kHeads * n);  // query rows
}

void BM_FlashForwardBf16(benchmark::State& state) {
  const int64_t n = state.range(0);
  sb::AttnProblem p(shape(n, DType::BF16), kSeed);
  run_loop(state, [&] { forward(sb::causal_spec(), p); });
  count_flops(state, sb::causal_forward_flops(n, kDim) * kHeads);
  state.SetItemsProcessed(state.iterations() * kHeads * n);
}

// Sink logit + GOAT relative prior (rank 16) + key bias + ALiBi.
void BM_FlashForwardExtras(benchmark::State& state) {
  const int64_t n = state.range(0);
  sb::AttnProblem p(shape(n), kSeed);
  sb::AttnExtras extras(p.shape(), kSeed + 1);
  const sinklab::AttnSpec spec = extras.apply(sb::causal_spec());
  run_loop(state, [&] { forward(spec, p); });
  count_flops(state, sb::causal_forward_flops(n, kDim) * kHeads);
  state.SetItemsProcessed(state.iterations() * kHeads * n);
}

void BM_FlashBackward(benchmark::State& state) {
  const int64_t n = state.range(0);
  sb::AttnProblem p(shape(n), kSeed);
  p.add_backward_buffers(kSeed + 2);
  const sinklab::AttnSpec spec = sb::causal_spec();
  try {
    forward(spec, p);  // o and lse as the backward expects them
  } catch (const sinklab::Error& e) {
    state.SkipWithError(e.what());
    return;
  }
  run_loop(state, [&] {
    sinklab::attention_backward(spec, p.q, p.k, p.v, p.o, p.lse, p.d_o, p.grads, AttnImpl::Flash);
  });
  count_flops(state, 2.5 * sb::causal_forward_flops(n, kDim) * kHeads);
  state.SetItemsProcessed(state.iterations() * kHeads * n);
}

// One query x 8 heads against a 65536-key cache; the argument is n_kv_heads
// (8 = one kv head per query head, 2 = GQA 8:2, 1 = one group of eight).
// bytes/s counts K and V once.
void BM_FlashDecode(benchmark::State& state) {
  sb::ProblemShape s = shape(kDecodeKeys);
  s.kv_heads = state.range(0);
  s.n_q = 1;
  sb::AttnProblem p(s, kSeed);
  run_loop(state, [&] { forward(sb::causal_spec(), p); });
  state.SetBytesProcessed(state.iterations() * int64_t(p.kv_bytes()));
}

// Materialised causal attention: sgemm Q.K^T, mask, softmax, sgemm P.V per head.
void BM_Baseline(benchmark::State& state) {
  const int64_t n = state.range(0);
  sb::AttnProblem p(shape(n), kSeed);
  sb::MaterialisedBaseline baseline(n, kHeads, kDim);
  run_loop(state, [&] { baseline.run(p); });
  count_flops(state, sb::causal_forward_flops(n, kDim) * kHeads);
  state.SetItemsProcessed(state.iterations() * kHeads * n);
}

// The machine's reference rates.
void BM_Sgemm(benchmark::State& state) {
  const int n = int(state.range(0));
  const size_t count = size_t(n) * size_t(n);
  std::vector<float> a(count), b(count), c(count);
  sb::fill_uniform(sinklab::TensorView(a.data(), DType::F32, {int64_t(count)}), 1);
  sb::fill_uniform(sinklab::TensorView(b.data(), DType::F32, {int64_t(count)}), 2);
  run_loop(state, [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.f, a.data(), n, b.data(), n,
                0.f, c.data(), n);
  });
  count_flops(state, 2.0 * double(n) * double(n) * double(n));
}

// Single-threaded memcpy; bytes/s counts bytes read + bytes written. The
// all-threads copy rate is part of `sinklab bench attention`.
void BM_MemCopy(benchmark::State& state) {
  const size_t bytes = size_t(state.range(0)) << 20;
  std::vector<unsigned char> src(bytes, 1), dst(bytes, 0);
  run_loop(state, [&] {
    std::memcpy(dst.data(), src.data(), bytes);
    benchmark::ClobberMemory();
  });
  state.SetBytesProcessed(state.iterations() * int64_t(2 * bytes));
}

using benchmark::kMillisecond;
BENCHMARK(BM_FlashForward)->Arg(1024)->Arg(4096)->Arg(16384)->Unit(kMillisecond)->UseRealTime();
BENCHMARK(BM_FlashForwardBf16)->Arg(4096)->Unit(kMillisecond)->UseRealTime();
BENCHMARK(BM_FlashForwardExtras)->Arg(1024)->Arg(4096)->Unit(kMillisecond)->UseRealTime();
BENCHMARK(BM_FlashBackward)->Arg(1024)->Arg(4096)->Unit(kMillisecond)->UseRealTime();
BENCHMARK(BM_FlashDecode)->Arg(8)->Arg(2)->Arg(1)->Unit(kMillisecond)->UseRealTime();
BENCHMARK(BM_Baseline)->Arg(1024)->Arg(4096)->Unit(kMillisecond)->UseRealTime();
BENCHMARK(BM_Sgemm)->Arg(2048)->Unit(kMillisecond)->UseRealTime();
BENCHMARK(BM_MemCopy)->Arg(512)->Unit(kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
