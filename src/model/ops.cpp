#include "ops.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "attention/blas_threads.h"

namespace sinklab::ops {

namespace {

// Runs body(chunk) for every chunk in [0, n) on the calling thread and on idle
// pool workers. Chunks are claimed one at a time and the caller waits only for
// chunks that were claimed, never for a worker that has not started: on a
// machine whose cores are busy with other processes, a worker the OS has not
// scheduled costs nothing (an OpenMP team would wait for it at the join).
// Decode calls this ~100 times per token, so idle workers spin briefly before
// they sleep.
class ChunkPool {
 public:
  using Body = std::function<void(int64_t)>;

  static ChunkPool& instance() {
    static ChunkPool pool;
    return pool;
  }

  void run(int64_t n, int threads, const Body& body) {
    std::unique_lock<std::mutex> exclusive(run_mu_, std::try_to_lock);
    if (n <= 1 || threads <= 1 || !exclusive.owns_lock()) {  // serial, or another caller holds the pool
      for (int64_t c = 0; c < n; ++c) body(c);
      return;
    }
    uint32_t gen;
    {
      std::lock_guard<std::mutex> lk(mu_);
      while (int(workers_.size()) < threads - 1) {
        const int index = int(workers_.size());
        workers_.emplace_back([this, index] { worker_loop(index); });
      }
      gen = ++generation_;
      body_ = &body;
      n_chunks_ = n;
      active_workers_ = threads - 1;
      done_.store(0, std::memory_order_relaxed);
      cursor_.store(uint64_t(gen) << 32, std::memory_order_release);
      published_.store(gen, std::memory_order_release);
      if (sleepers_ > 0) cv_.notify_all();
    }
    claim(gen, n, body);
    while (done_.load(std::memory_order_acquire) < n) std::this_thread::yield();
  }

  ~ChunkPool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
      published_.store(generation_ + 1, std::memory_order_release);
    }
    cv_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

 private:
  ChunkPool() = default;

  void claim(uint32_t gen, int64_t n, const Body& body) {
    uint64_t cur = cursor_.load(std::memory_order_acquire);
    for (;;) {
      if (uint32_t(cur >> 32) != gen || int64_t(cur & 0xffffffffu) >= n) return;
      if (!cursor_.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel)) continue;
      body(int64_t(cur & 0xffffffffu));
      done_.fetch_add(1, std::memory_order_release);
      cur = cursor_.load(std::memory_order_acquire);
    }
  }

  void worker_loop(int index) {
    uint32_t seen = 0;
    for (;;) {
      for (int spin = 0; spin < 20000 && published_.load(std::memory_order_acquire) == seen; ++spin)
        __builtin_ia32_pause();
      const Body* body;
      int64_t n;
      {
        std::unique_lock<std::mutex> lk(mu_);
        ++sleepers_;
        cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
        --sleepers_;
        if (stop_) return;
        seen = generation_;
        if (index >= active_workers_) continue;
        body = body_;
        n = n_chunks_;
      }
      claim(seen, n, *body);
    }
  }

  std::mutex run_mu_;  // one caller at a time
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::thread> workers_;
  uint32_t generation_ = 0;  // guarded by mu_
  const Body* body_ = nullptr;
  int64_t n_chunks_ = 0;
  int active_workers_ = 0;
  int sleepers_ = 0;
  bool stop_ = false;
  std::atomic<uint32_t> published_{0};  // generation_, readable without the lock
  std::atomic<uint64_t> cursor_{0};     // (generation << 32) | next chunk
  std::atomic<int64_t> done_{0};
};

// Rows per claimed chunk: about 64 KiB of weights.
int64_t rows_per_chunk(const WeightMatrix& w) {
  return std::max<int64_t>(4, (int64_t(64) << 10) / std::max<int64_t>(1, w.cols * int64_t(dtype_size(w.dtype))));
}

inline float dot_f32(const float* w, const float* x, int64_t n) {
  float acc[16] = {0};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; ++k) acc[k] += w[i + k] * x[i + k];
  float s = 0;
  for (int k = 0; k < 16; ++k) s += acc[k];
  for (; i < n; ++i) s += w[i] * x[i];
  return s;
}

// Dot product of a bf16 row with a float vector: widen by shifting the bits,
// which the compiler vectorises.
inline float dot_bf16(const uint16_t* w, const float* x, int64_t n) {
  float acc[16] = {0};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; ++k) {
      const uint32_t u = uint32_t(w[i + k]) << 16;
      float f;
      __builtin_memcpy(&f, &u, 4);
      acc[k] += f * x[i + k];
    }
  float s = 0;
  for (int k = 0; k < 16; ++k) s += acc[k];
  for (; i < n; ++i) {
    const uint32_t u = uint32_t(w[i]) << 16;
    float f;
    __builtin_memcpy(&f, &u, 4);
    s += f * x[i];
  }
  return s;
}

// Rows of bf16 weights converted in blocks, each block multiplied with BLAS.
void matmul_bf16_blocked(const WeightMatrix& w, const float* x, int64_t n, float* y) {
  constexpr int64_t kRows = 64;
  const int64_t blocks = (w.rows + kRows - 1) / kRows;
  const uint16_t* base = static_cast<const uint16_t*>(w.data);
  const attn::SingleThreadedBlas blas_guard;
#pragma omp parallel if (double(n) * double(w.rows) * double(w.cols) > 3e5)
  {
    std::vector<float> tile(size_t(kRows * w.cols));
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t r0 = b * kRows, nr = std::min(kRows, w.rows - r0);
      to_f32(DType::BF16, base + r0 * w.cols, tile.data(), size_t(nr * w.cols));
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(nr), int(w.cols), 1.f, x,
                  int(w.cols), tile.data(), int(w.cols), 0.f, y + r0, int(w.rows));
    }
  }
}

}  // namespace

// y[n, rows] for a few rows of x: one dot product per (row, token), rows
// shared out in chunks. Reads each weight once for all n tokens.
void matmul_rows(const WeightMatrix& w, const float* x, int64_t n, float* y) {
  const int64_t chunk = rows_per_chunk(w);
  const int64_t chunks = (w.rows + chunk - 1) / chunk;
  const bool bf16 = w.dtype == DType::BF16;
  const int threads = double(n) * double(w.rows) * double(w.cols) > 3e5 ? num_threads() : 1;
  ChunkPool::instance().run(chunks, threads, [&](int64_t c) {
    const int64_t r1 = std::min(w.rows, (c + 1) * chunk);
    for (int64_t r = c * chunk; r < r1; ++r)
      for (int64_t i = 0; i < n; ++i)
        y[i * w.rows + r] = bf16 ? dot_bf16(static_cast<const uint16_t*>(w.data) + r * w.cols, x + i * w.cols, w.cols)
                                 : dot_f32(static_cast<const float*>(w.data) + r * w.cols, x + i * w.cols, w.cols);
  });
}

void matmul(const WeightMatrix& w, const float* x, int64_t n, float* y, const float* bias) {
  if (n <= 4 && (w.dtype == DType::F32 || w.dtype == DType::BF16)) {
    matmul_rows(w, x, n, y);
  } else if (w.dtype == DType::F32) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(w.rows), int(w.cols), 1.f, x,
                int(w.cols), static_cast<const float*>(w.data), int(w.cols), 0.f, y, int(w.rows));
  } else {
    matmul_bf16_blocked(w, x, n, y);
  }
  if (bias)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t r = 0; r < w.rows; ++r) y[i * w.rows + r] += bias[r];
}

void matrix_row(const WeightMatrix& w, int64_t i, float* out) {
  const size_t es = dtype_size(w.dtype);
  to_f32(w.dtype, static_cast<const uint8_t*>(w.data) + size_t(i * w.cols) * es, out, size_t(w.cols));
}

void rmsnorm(const float* x, const float* weight, int64_t rows, int64_t d, float eps, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * d;
    float* yr = y + r * d;
    double ss = 0;
    for (int64_t i = 0; i < d; ++i) ss += double(xr[i]) * xr[i];
    const float inv = float(1.0 / std::sqrt(ss / double(d) + eps));
    for (int64_t i = 0; i < d; ++i) yr[i] = xr[i] * inv * weight[i];
  }
}

void swiglu(const float* g, const float* u, int64_t n, float* a) {
  for (int64_t i = 0; i < n; ++i) a[i] = g[i] / (1.f + std::exp(-g[i])) * u[i];
}

void softmax(float* x, int64_t n) {
  float m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += (x[i] = std::exp(x[i] - m));
  const float inv = float(1.0 / s);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace sinklab::ops
