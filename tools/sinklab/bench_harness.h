// Shared pieces of the attention benchmarks: the `sinklab bench attention`
// command and the Google Benchmark programs in bench/ both use them.
// Timing, the machine's reference rates (sgemm, memory copy), peak-RSS
// probes, benchmark problems, and the materialised BLAS attention baseline.
// Not part of libsinklab.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "sinklab/attention.h"
#include "sinklab/core.h"

namespace sinklab::bench {

// ---------------------------------------------------------------- timing ----
struct Timing {
  double median_s = 0;
  double min_s = 0;
  int reps = 0;                    // timed repetitions (after the warm-up calls)
  std::vector<double> samples_s;  // each timed call, ascending
};

// Calls fn `warmup` times, then `reps` times, and returns the median and the
// minimum wall time of the timed calls. When a single warm-up call takes
// longer than long_call_s, at most 3 timed repetitions are made.
Timing time_median(const std::function<void()>& fn, int warmup, int reps,
                   double long_call_s = 5.0);

// The same for several functions called in turn (a, b, a, b, ...), so that a
// change in machine load while measuring touches all of them alike; use it
// for anything that is reported as a ratio.
std::vector<Timing> time_interleaved(const std::vector<std::function<void()>>& fns, int warmup,
                                     int reps, double long_call_s = 5.0);

// The timed calls of several timings of the same thing as one timing (median
// and minimum over all of their samples).
Timing pooled(std::initializer_list<const Timing*> timings);

// Sets the thread count of sinklab's kernels (OpenMP) and of OpenBLAS.
// 0 = every hardware thread.
void set_threads(int n);
int threads();

// ------------------------------------------------------ machine reference ----
struct SgemmRate {
  int n = 0;  // C[n x n] = A[n x n] B[n x n]
  Timing time;
  double gflops = 0;
};
// OpenBLAS cblas_sgemm on square matrices with every configured thread.
SgemmRate measure_sgemm(int n, int reps);

struct CopyRate {
  size_t buffer_bytes = 0;  // bytes copied per call
  Timing time;
  double gb_per_s = 0;      // (bytes read + bytes written) / time = 2 * buffer_bytes / time
  Timing read_time;
  double read_gb_per_s = 0;  // a read-only pass (vectorised sum) over the source: bytes / time
  double memcpy_gb_per_s = 0;  // the same copy by glibc's memcpy, for reference (measure_copy only)
};
// A parallel copy of one large buffer into another (non-temporal stores, two
// streams per thread) and a parallel read-only pass over the source (two
// streams per thread): the fastest copy and read found on the hosts measured.
CopyRate measure_copy(size_t buffer_bytes, int reps);
// The buffers of measure_copy, kept so that copy and read passes can be timed
// in turn with something else (time_interleaved) on a machine whose bandwidth
// drifts.
class BandwidthProbe {
 public:
  explicit BandwidthProbe(size_t buffer_bytes);
  void copy();
  void read();
  void memcpy_copy();  // the copy through memcpy, each thread its slice
  CopyRate rate(const Timing& copy_time, const Timing& read_time) const;

 private:
  void parallel_slices(const std::function<void(size_t, size_t)>& body) const;
  size_t bytes_;
  AlignedPtr<uint8_t> src_, dst_;  // on huge pages, like the model weights
  std::atomic<float> keep_{0.f};
};

// ------------------------------------------------------------ peak memory ----
// Resets the kernel's peak-RSS mark (VmHWM) through /proc/self/clear_refs after
// returning freed heap memory to the system. False when clear_refs is not
// writable; peak_rss_bytes then reports the lifetime peak (VmHWM, or getrusage
// where /proc/self/status is missing).
bool reset_peak_rss();
int64_t peak_rss_bytes();
int64_t current_rss_bytes();

// ------------------------------------------------------------------ FLOPs ----
// Useful FLOPs of a causal forward per head with n_q == n_k == n: only the
// visible half, QK^T and PV, 2 FLOPs per multiply-add: 4 * n(n+1)/2 * d.
inline double causal_forward_flops(int64_t n, int64_t d) {
  return 4.0 * double(n) * double(n + 1) / 2.0 * double(d);
}

// --------------------------------------------------------------- problems ----
struct ProblemShape {
  int64_t batch = 1, heads = 8, kv_heads = 8, n_q = 1024, n_k = 1024, dim = 128;
  DType dtype = DType::F32;  // of q, k, v and o; lse and gradients are always f32
};

// Inputs and outputs of one attention call, contiguous, filled with uniform
// random values in [-1, 1] (every page touched). Owns its memory.
class AttnProblem {
 public:
  AttnProblem(const ProblemShape& shape, uint64_t seed);
  AttnProblem(const AttnProblem&) = delete;
  AttnProblem& operator=(const AttnProblem&) = delete;

  // Adds d_o (random), dq, dk, dv (zeroed) for attention_backward.
  void add_backward_buffers(uint64_t seed);

  const ProblemShape& shape() const { return shape_; }
  // Bytes of q, k, v, o and lse (the buffers every forward needs).
  size_t forward_bytes() const;
  size_t kv_bytes() const;  // k and v only

  TensorView q, k, v, o, lse, d_o;
  AttnGrads grads;  // dq, dk, dv after add_backward_buffers

 private:
  TensorView make(std::initializer_list<int64_t> dims, DType dtype);
  ProblemShape shape_;
  std::vector<AlignedPtr<unsigned char>> storage_;
};

// Fills a view's memory (contiguous) with uniform values in [-amplitude, amplitude].
void fill_uniform(const TensorView& t, uint64_t seed, float amplitude = 1.f);

// Sink logits, a GOAT relative prior, a key bias and ALiBi slopes, with
// random values of realistic size, and the storage they live in.
class AttnExtras {
 public:
  static constexpr int kGoatRank = 16;
  AttnExtras(const ProblemShape& shape, uint64_t seed);
  // Returns `base` with every extra switched on.
  AttnSpec apply(AttnSpec base);

 private:
  int64_t kv_heads_ = 0, n_k_ = 0;
  std::vector<float> sink_logits_, lambda_sym_, lambda_asym_, key_bias_, alibi_;
};

// The plain causal spec used by every benchmark (scale 1/sqrt(dim), no RoPE).
AttnSpec causal_spec();

// ---------------------------------------------------- materialised baseline ----
// Causal attention per head the textbook way, f32 only, n_q == n_k:
//   S = scale * Q K^T (cblas_sgemm, the masked half included), causal mask,
//   row softmax (max-subtracted, vectorised exp), O = P V (cblas_sgemm).
// One N x N score buffer is reused across heads; every sgemm uses all threads.
// The output goes to the baseline's own buffer, so it can be compared with o.
class MaterialisedBaseline {
 public:
  MaterialisedBaseline(int64_t n, int64_t heads, int64_t dim);
  static size_t score_bytes(int64_t n) { return size_t(n) * size_t(n) * sizeof(float); }
  void run(const AttnProblem& p);
  const float* output() const { return out_.get(); }  // [heads, n, dim] after run

 private:
  int64_t n_, heads_, dim_;
  AlignedPtr<float> scores_, out_;
};

// -------------------------------------------------------- attention suite ----
struct SuiteOptions {
  std::vector<int64_t> sizes{1024, 4096, 16384};  // N of the causal forward table
  int reps = 5;
  int threads = 0;             // 0 = every hardware thread
  bool quick = false;          // only changes the wording of the report
  int64_t memory_n = 65536;    // N of the working-memory run; 0 = skip
  int64_t decode_keys = 65536;  // cache length of the decode runs; 0 = skip
  AttnImpl impl = AttnImpl::Flash;  // Reference only to check the harness at small N
  std::string json_path;       // empty = no JSON file
  std::string command;         // the command line, recorded in the report
};

// Runs every measurement, prints the table to stdout as it goes and writes the
// JSON file when json_path is set. Targets that are missed are reported, never
// turned into a failure; throws Error only for unusable options or files.
void run_attention_suite(const SuiteOptions& options);

}  // namespace sinklab::bench
