// Benchmark problems (random q, k, v and outputs), the attention extras, and
// the materialised BLAS baseline.
#include <cblas.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "bench_harness.h"

namespace sinklab::bench {

namespace {

// Uniform in [-1, 1) from the index, so any thread can fill any element.
float uniform_at(uint64_t seed, uint64_t i) {
  const uint64_t x = splitmix64(seed * 0x632be59bd9b4e019ull + i);
  return float(double(x >> 40) * (2.0 / 16777216.0) - 1.0);
}

std::vector<float> uniform_vector(size_t n, uint64_t seed, float lo, float hi) {
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = lo + (hi - lo) * 0.5f * (uniform_at(seed, i) + 1.f);
  return out;
}

// e^x for x <= 0, relative error about 2e-7: round(x / ln 2) splits off the
// power of two, a degree-6 polynomial covers the rest. Branch-free so the
// softmax loop vectorises.
inline float exp_nonpositive(float x) {
  x = std::max(x, -87.f);
  const float n = (x * 1.44269504f + 12582912.f) - 12582912.f;  // round to nearest
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;   // x - n ln 2 in two parts
  float p = 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  const int32_t biased = int32_t(n) + 127;
  return p * std::bit_cast<float>(biased << 23);
}

// In place: row[0..visible) becomes softmax, row[visible..n) becomes 0.
void softmax_prefix(float* row, int64_t visible, int64_t n) {
  // omp simd lets the max and the sum be split into vector lanes.
  float m = row[0];
#pragma omp simd reduction(max : m)
  for (int64_t j = 1; j < visible; ++j) m = std::max(m, row[j]);
  float sum = 0.f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < visible; ++j) {
    const float e = exp_nonpositive(row[j] - m);
    row[j] = e;
    sum += e;
  }
  const float inv = 1.f / sum;
  for (int64_t j = 0; j < visible; ++j) row[j] *= inv;
  std::memset(row + visible, 0, size_t(n - visible) * sizeof(float));
}

}  // namespace

void fill_uniform(const TensorView& t, uint64_t seed, float amplitude) {
  const int64_t n = t.numel();
  if (t.dtype == DType::F32) {
    float* p = static_cast<float*>(t.data);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) p[i] = amplitude * uniform_at(seed, uint64_t(i));
  } else {
    check(t.dtype == DType::BF16, "bench: fill_uniform supports f32 and bf16 only");
    bf16* p = static_cast<bf16*>(t.data);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) p[i] = f32_to_bf16(amplitude * uniform_at(seed, uint64_t(i)));
  }
}

AttnProblem::AttnProblem(const ProblemShape& s, uint64_t seed) : shape_(s) {
  check(s.dtype == DType::F32 || s.dtype == DType::BF16, "bench: problem dtype must be f32 or bf16");
  q = make({s.batch, s.heads, s.n_q, s.dim}, s.dtype);
  k = make({s.batch, s.kv_heads, s.n_k, s.dim}, s.dtype);
  v = make({s.batch, s.kv_heads, s.n_k, s.dim}, s.dtype);
  o = make({s.batch, s.heads, s.n_q, s.dim}, s.dtype);
  lse = make({s.batch, s.heads, s.n_q}, DType::F32);
  fill_uniform(q, seed + 1);
  fill_uniform(k, seed + 2);
  fill_uniform(v, seed + 3);
  fill_uniform(o, seed + 4);
  fill_uniform(lse, seed + 5);
}

TensorView AttnProblem::make(std::initializer_list<int64_t> dims, DType dtype) {
  size_t count = 1;
  for (int64_t d : dims) count *= size_t(d);
  storage_.push_back(aligned_array<unsigned char>(std::max<size_t>(count * dtype_size(dtype), 64)));
  return TensorView(storage_.back().get(), dtype, dims);
}

void AttnProblem::add_backward_buffers(uint64_t seed) {
  const ProblemShape& s = shape_;
  d_o = make({s.batch, s.heads, s.n_q, s.dim}, s.dtype);
  fill_uniform(d_o, seed);
  grads.dq = make({s.batch, s.heads, s.n_q, s.dim}, DType::F32);
  grads.dk = make({s.batch, s.kv_heads, s.n_k, s.dim}, DType::F32);
  grads.dv = make({s.batch, s.kv_heads, s.n_k, s.dim}, DType::F32);
  for (const TensorView* g : {&grads.dq, &grads.dk, &grads.dv})
    std::memset(g->data, 0, size_t(g->numel()) * sizeof(float));
}

size_t AttnProblem::forward_bytes() const {
  size_t bytes = 0;
  for (const TensorView* t : {&q, &k, &v, &o, &lse}) bytes += size_t(t->numel()) * dtype_size(t->dtype);
  return bytes;
}

size_t AttnProblem::kv_bytes() const {
  return size_t(k.numel()) * dtype_size(k.dtype) + size_t(v.numel()) * dtype_size(v.dtype);
}

AttnExtras::AttnExtras(const ProblemShape& s, uint64_t seed)
    : kv_heads_(s.kv_heads), n_k_(s.n_k) {
  sink_logits_ = uniform_vector(size_t(s.heads), seed + 1, -2.f, 2.f);
  lambda_sym_ = uniform_vector(size_t(s.kv_heads * kGoatRank), seed + 2, -0.5f, 0.5f);
  lambda_asym_ = uniform_vector(size_t(s.kv_heads * kGoatRank), seed + 3, -0.5f, 0.5f);
  key_bias_ = uniform_vector(size_t(s.batch * s.kv_heads * s.n_k), seed + 4, -1.f, 1.f);
  // The ALiBi paper's geometric slopes 2^(-8 (h+1) / H).
  alibi_.resize(size_t(s.heads));
  for (int64_t h = 0; h < s.heads; ++h)
    alibi_[size_t(h)] = float(std::exp2(-8.0 * double(h + 1) / double(s.heads)));
}

AttnSpec AttnExtras::apply(AttnSpec spec) {
  spec.sink_logits = sink_logits_.data();
  spec.goat.rank = kGoatRank;
  spec.goat.lambda_sym = lambda_sym_.data();
  spec.goat.lambda_asym = lambda_asym_.data();
  const int64_t batch = int64_t(key_bias_.size()) / (kv_heads_ * n_k_);
  spec.key_bias = TensorView(key_bias_.data(), DType::F32, {batch, kv_heads_, n_k_});
  spec.alibi_slopes = alibi_.data();
  return spec;
}

AttnSpec causal_spec() {
  AttnSpec spec;
  spec.causal = true;
  return spec;
}

MaterialisedBaseline::MaterialisedBaseline(int64_t n, int64_t heads, int64_t dim)
    : n_(n), heads_(heads), dim_(dim), scores_(aligned_array<float>(size_t(n) * size_t(n))),
      out_(aligned_array<float>(size_t(heads) * size_t(n) * size_t(dim))) {
  std::memset(scores_.get(), 0, score_bytes(n));
  std::memset(out_.get(), 0, size_t(heads) * size_t(n) * size_t(dim) * sizeof(float));
}

void MaterialisedBaseline::run(const AttnProblem& p) {
  const ProblemShape& s = p.shape();
  check(s.dtype == DType::F32, "bench: the materialised baseline takes f32 inputs");
  check(s.batch == 1 && s.n_q == n_ && s.n_k == n_ && s.heads == heads_ && s.dim == dim_,
        "bench: the materialised baseline needs batch 1 and n_q == n_k, heads, dim as constructed");
  const int n = int(n_), d = int(s.dim);
  const float scale = float(1.0 / std::sqrt(double(s.dim)));
  const int64_t group = s.heads / s.kv_heads;
  float* S = scores_.get();
  for (int64_t h = 0; h < s.heads; ++h) {
    const auto* qh = static_cast<const float*>(p.q.at(0, h));
    const auto* kh = static_cast<const float*>(p.k.at(0, h / group));
    const auto* vh = static_cast<const float*>(p.v.at(0, h / group));
    float* oh = out_.get() + h * n_ * dim_;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, d, scale, qh, d, kh, d, 0.f, S, n);
    // Row i sees keys 0..i; later rows are longer, hence the dynamic schedule.
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t i = 0; i < n_; ++i) softmax_prefix(S + i * n_, i + 1, n_);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, n, 1.f, S, n, vh, d, 0.f, oh, d);
  }
}

}  // namespace sinklab::bench
