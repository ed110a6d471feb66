// Speed of the block-type dot kernels (src/model/quant_kernels.h) against the
// f32 and bf16 row dots of the decode matrix product, all in one run on one
// thread: GB/s of weight bytes read, and the time per matrix-vector product
// relative to f32's.
//
//   build/bin/bench_quant [rows cols [n [copies]]]     (default 2048 768 1 1)
//
// `copies` distinct matrices are used in turn, so copies * bytes larger than
// the last-level cache measures reads from memory rather than from cache.
// Times are the thread's CPU time, the fastest of several runs: on a shared
// machine, time spent descheduled is not the kernel's.
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "model/decode_kernels.h"
#include "model/quant_kernels.h"
#include "sinklab/vec_math.h"

using namespace sinklab;

namespace {

struct Problem {
  int64_t rows, cols, n, copies;
};

double thread_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// Fastest CPU seconds of one call of fn over `reps` runs of enough calls to take ~20 ms.
double best_seconds(const std::function<void(int64_t)>& fn, int reps = 9) {
  int64_t calls = 1;
  for (;;) {
    const double t0 = thread_seconds();
    for (int64_t i = 0; i < calls; ++i) fn(i);
    if (thread_seconds() - t0 > 0.02) break;
    calls *= 2;
  }
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    const double t0 = thread_seconds();
    for (int64_t i = 0; i < calls; ++i) fn(i);
    best = std::min(best, (thread_seconds() - t0) / double(calls));
  }
  return best;
}

void report(const char* name, const char* path, size_t bytes, double seconds, double f32_seconds) {
  std::printf("%-6s %-9s %9.3f MB %10.1f us %8.2f GB/s %8.2fx\n", name, path, double(bytes) / 1e6, seconds * 1e6,
              double(bytes) / seconds / 1e9, f32_seconds / seconds);
}

}  // namespace

int main(int argc, char** argv) {
  Problem p{2048, 768, 1, 1};
  if (argc > 2) p.rows = std::atoll(argv[1]), p.cols = std::atoll(argv[2]);
  if (argc > 3) p.n = std::atoll(argv[3]);
  if (argc > 4) p.copies = std::atoll(argv[4]);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> w(size_t(p.rows * p.cols)), x(size_t(p.n * p.cols)), y(size_t(p.n * p.rows));
  for (float& v : w) v = normal(rng);
  for (float& v : x) v = normal(rng);
  std::printf("%lld x %lld weights, %lld vector(s), %lld cop%s, one thread\n", (long long)p.rows, (long long)p.cols,
              (long long)p.n, (long long)p.copies, p.copies == 1 ? "y" : "ies");
  std::printf("%-6s %-9s %12s %13s %13s %9s\n", "type", "path", "weights", "time", "rate", "vs f32");

  // f32 and bf16 baselines: one row dot per row and vector, as the decode matrix product does.
  std::vector<std::vector<float>> wf(size_t(p.copies), w);
  const double f32_s = best_seconds([&](int64_t call) {
    const float* m = wf[size_t(call % p.copies)].data();
    for (int64_t i = 0; i < p.n; ++i)
      for (int64_t r = 0; r < p.rows; ++r) y[size_t(i * p.rows + r)] = vec::dot(m + r * p.cols, x.data() + i * p.cols, p.cols);
  });
  report("F32", "vec::dot", w.size() * 4, f32_s, f32_s);
  std::vector<std::vector<uint16_t>> wb(size_t(p.copies), std::vector<uint16_t>(w.size()));
  for (auto& m : wb)
    for (size_t i = 0; i < w.size(); ++i) m[i] = f32_to_bf16(w[i]).bits;
  const double bf16_s = best_seconds([&](int64_t call) {
    const uint16_t* m = wb[size_t(call % p.copies)].data();
    for (int64_t i = 0; i < p.n; ++i)
      for (int64_t r = 0; r < p.rows; ++r)
        y[size_t(i * p.rows + r)] = ops::kernels::dot_bf16(m + r * p.cols, x.data() + i * p.cols, p.cols);
  });
  report("BF16", "dot_bf16", w.size() * 2, bf16_s, f32_s);

  for (TensorType t : {TensorType::F16, TensorType::Q8_0, TensorType::Q6_K, TensorType::Q5_K, TensorType::Q4_K,
                       TensorType::Q4_0, TensorType::MXFP4}) {
    if (p.cols % tensor_type_block_size(t) != 0) continue;
    const size_t bytes = quant::row_bytes(t, p.cols) * size_t(p.rows);
    std::vector<std::vector<uint8_t>> q(size_t(p.copies), std::vector<uint8_t>(bytes));
    quant::quantize_rows(t, w.data(), p.rows, p.cols, q[0].data());
    for (auto& m : q) m = q[0];
    for (quant::KernelPath path : quant::compiled_kernel_paths()) {
      const double s = best_seconds([&](int64_t call) {
        quant::dot_rows(path, t, q[size_t(call % p.copies)].data(), p.rows, p.cols, x.data(), p.n, y.data(), p.rows);
      });
      report(tensor_type_name(t), quant::kernel_path_name(path), bytes, s, f32_s);
    }
  }
  return 0;
}
