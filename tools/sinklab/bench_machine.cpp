// Timing, thread settings and the machine's reference rates (sgemm, memory
// copy) and peak-RSS probes used by the attention benchmarks.
#include <cblas.h>
#if defined(__SSE2__)
#include <immintrin.h>
#endif
#include <malloc.h>
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "bench_harness.h"

namespace sinklab::bench {
namespace {

Timing timing_of(std::vector<double> samples) {
  check(!samples.empty(), "bench: no timed samples");
  std::sort(samples.begin(), samples.end());
  const size_t m = samples.size() / 2;
  Timing timing;
  timing.median_s = samples.size() % 2 ? samples[m] : 0.5 * (samples[m - 1] + samples[m]);
  timing.min_s = samples.front();
  timing.reps = int(samples.size());
  timing.samples_s = std::move(samples);
  return timing;
}

}  // namespace

std::vector<Timing> time_interleaved(const std::vector<std::function<void()>>& fns, int warmup,
                                     int reps, double long_call_s) {
  using clock = std::chrono::steady_clock;
  auto seconds_of = [](const std::function<void()>& fn) {
    const auto t0 = clock::now();
    fn();
    return std::chrono::duration<double>(clock::now() - t0).count();
  };
  double slowest_warmup = 0;
  for (int i = 0; i < warmup; ++i)
    for (const auto& fn : fns) slowest_warmup = std::max(slowest_warmup, seconds_of(fn));
  if (warmup > 0 && slowest_warmup > long_call_s) reps = std::min(reps, 3);
  reps = std::max(reps, 1);
  std::vector<std::vector<double>> times(fns.size());
  for (int r = 0; r < reps; ++r)
    for (size_t f = 0; f < fns.size(); ++f) times[f].push_back(seconds_of(fns[f]));
  std::vector<Timing> out;
  for (std::vector<double>& t : times) out.push_back(timing_of(std::move(t)));
  return out;
}

Timing pooled(std::initializer_list<const Timing*> timings) {
  std::vector<double> t;
  for (const Timing* timing : timings) t.insert(t.end(), timing->samples_s.begin(), timing->samples_s.end());
  return timing_of(std::move(t));
}

Timing time_median(const std::function<void()>& fn, int warmup, int reps, double long_call_s) {
  return time_interleaved({fn}, warmup, reps, long_call_s).front();
}

void set_threads(int n) {
  sinklab::set_num_threads(n);
  openblas_set_num_threads(sinklab::num_threads());
}

int threads() { return sinklab::num_threads(); }

SgemmRate measure_sgemm(int n, int reps) {
  const size_t count = size_t(n) * size_t(n);
  AlignedPtr<float> a = aligned_array<float>(count), b = aligned_array<float>(count),
                    c = aligned_array<float>(count);
  fill_uniform(TensorView(a.get(), DType::F32, {int64_t(count)}), 1);
  fill_uniform(TensorView(b.get(), DType::F32, {int64_t(count)}), 2);
  std::memset(c.get(), 0, count * sizeof(float));
  SgemmRate r;
  r.n = n;
  r.time = time_median(
      [&] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.f, a.get(), n, b.get(), n,
                    0.f, c.get(), n);
      },
      1, reps);
  r.gflops = 2.0 * double(n) * double(n) * double(n) / r.time.median_s * 1e-9;
  return r;
}

BandwidthProbe::BandwidthProbe(size_t buffer_bytes)
    : bytes_(buffer_bytes),
      src_(huge_page_alloc(buffer_bytes)),
      dst_(huge_page_alloc(buffer_bytes)) {
  parallel_slices([&](size_t b, size_t e) {
    std::memset(src_.get() + b, 1, e - b);
    std::memset(dst_.get() + b, 0, e - b);
  });
}

// Each thread first touches (and later streams) its own slice, so pages sit
// near the thread that streams them. An OpenMP team rather than the decode
// pool: its threads spin between passes instead of sleeping, and a pass that
// waited on a sleeping thread's wake-up would read ~7% slow (a higher copy rate
// is the stricter yardstick for decode).
void BandwidthProbe::parallel_slices(const std::function<void(size_t, size_t)>& body) const {
#pragma omp parallel
  {
    const size_t nt = size_t(omp_get_num_threads()), t = size_t(omp_get_thread_num());
    const size_t chunk = round_up(bytes_ / nt, 64);
    const size_t begin = std::min(bytes_, t * chunk);
    const size_t end = std::min(bytes_, begin + chunk);
    body(begin, end);
  }
}

// The fastest copy and read measured on the hosts we run: each thread works
// on the two halves of its slice at once, one 64-byte line of each in turn
// (two memory streams per thread), and the copy stores around the caches
// (non-temporal stores, no read of the destination first). On them glibc's
// memcpy copied 20-30% slower and a one-stream read read 15-25% slower: a
// decode rate against those would look better than the memory allows.
void BandwidthProbe::copy() {
  parallel_slices([&](size_t b, size_t e) {
    const size_t half = (e - b) / 2 / 64 * 64;
    const unsigned char* s0 = src_.get() + b;
    unsigned char* d0 = dst_.get() + b;
#if defined(__SSE2__)
    const unsigned char *s1 = s0 + half;
    unsigned char* d1 = d0 + half;
    for (size_t o = 0; o < half; o += 64)
      for (size_t k = 0; k < 64; k += 16) {
        const __m128i a = _mm_load_si128(reinterpret_cast<const __m128i*>(s0 + o + k));
        const __m128i c = _mm_load_si128(reinterpret_cast<const __m128i*>(s1 + o + k));
        _mm_stream_si128(reinterpret_cast<__m128i*>(d0 + o + k), a);
        _mm_stream_si128(reinterpret_cast<__m128i*>(d1 + o + k), c);
      }
    _mm_sfence();
    std::memcpy(d0 + 2 * half, s0 + 2 * half, e - b - 2 * half);
#else
    std::memcpy(d0, s0, e - b);
#endif
  });
}

// Four independent 8-float vector sums per thread, two per stream, so the
// loop streams rather than waits on one addition chain (256-bit loads: on
// some hosts 512-bit loads stream from DRAM markedly slower); the total is
// kept so it is not elided.
void BandwidthProbe::read() {
  using f32x8 = float __attribute__((vector_size(32)));
  parallel_slices([&](size_t b, size_t e) {
    const size_t half = (e - b) / 2 / 64 * 64;
    const unsigned char* p = src_.get() + b;
    const unsigned char* q = p + half;
    f32x8 acc[4] = {};
    const auto add = [](f32x8& to, const unsigned char* at) {
      f32x8 v;
      std::memcpy(&v, at, sizeof v);
      to += v;
    };
    for (size_t o = 0; o < half; o += 64) {
      add(acc[0], p + o), add(acc[1], p + o + 32);
      add(acc[2], q + o), add(acc[3], q + o + 32);
    }
    for (size_t o = 2 * half; o + 32 <= e - b; o += 32) add(acc[0], p + o);
    const f32x8 sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    float s = 0.f;
    for (int k = 0; k < 8; ++k) s += sum[k];
    keep_.fetch_add(s, std::memory_order_relaxed);
  });
}

CopyRate BandwidthProbe::rate(const Timing& copy_time, const Timing& read_time) const {
  CopyRate r;
  r.buffer_bytes = bytes_;
  r.time = copy_time;
  r.gb_per_s = 2.0 * double(bytes_) / copy_time.median_s * 1e-9;
  r.read_time = read_time;
  r.read_gb_per_s = double(bytes_) / read_time.median_s * 1e-9;
  return r;
}

void BandwidthProbe::memcpy_copy() {
  parallel_slices([&](size_t b, size_t e) { std::memcpy(dst_.get() + b, src_.get() + b, e - b); });
}

CopyRate measure_copy(size_t buffer_bytes, int reps) {
  BandwidthProbe probe(buffer_bytes);
  const std::vector<Timing> t = time_interleaved(
      {[&] { probe.copy(); }, [&] { probe.read(); }, [&] { probe.memcpy_copy(); }}, 1, reps);
  CopyRate r = probe.rate(t[0], t[1]);
  r.memcpy_gb_per_s = 2.0 * double(buffer_bytes) / t[2].median_s * 1e-9;
  return r;
}

namespace {

// Reads a "Key:   1234 kB" line of /proc/self/status; -1 when missing.
int64_t status_kib(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const size_t key_len = std::strlen(key);
  while (std::getline(in, line))
    if (line.compare(0, key_len, key) == 0 && line.size() > key_len && line[key_len] == ':')
      return std::stoll(line.substr(key_len + 1));
  return -1;
}

}  // namespace

bool reset_peak_rss() {
  malloc_trim(0);  // freed heap pages would otherwise hide a kernel's allocations
  std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (!f) return false;
  const bool ok = std::fputs("5", f) >= 0;
  return (std::fclose(f) == 0) && ok;
}

int64_t peak_rss_bytes() {
  const int64_t kib = status_kib("VmHWM");
  if (kib >= 0) return kib * 1024;
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return int64_t(u.ru_maxrss) * 1024;
}

int64_t current_rss_bytes() {
  const int64_t kib = status_kib("VmRSS");
  return kib < 0 ? -1 : kib * 1024;
}

}  // namespace sinklab::bench
