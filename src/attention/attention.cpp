// The public entry points: validate once, then hand the problem to an
// implementation (float64 reference or the flash kernels).
#include <cmath>

#include "sinklab/blas_threads.h"
#include "flash.h"

namespace sinklab {

namespace {

void write_row(const TensorView& t, const double* src, int64_t n, int64_t b, int64_t h, int64_t i) {
  void* dst = t.at(b, h, i);
  for (int64_t e = 0; e < n; ++e) {
    const float x = float(src[e]);
    if (t.dtype == DType::F32)
      static_cast<float*>(dst)[e] = x;
    else
      static_cast<bf16*>(dst)[e] = f32_to_bf16(x);
  }
}

void write_reference(const attn::Dims& d, const ReferenceForward& r, const TensorView& o,
                     const TensorView& lse, AttnStats* stats) {
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t h = 0; h < d.n_heads; ++h) {
      const int64_t bh = b * d.n_heads + h;
      for (int64_t i = 0; i < d.n_q; ++i) {
        const size_t row = size_t(bh * d.n_q + i);
        write_row(o, &r.o[row * size_t(d.v_dim)], d.v_dim, b, h, i);
        if (!lse.empty()) *static_cast<float*>(lse.at(b, h, i)) = float(r.lse[row]);
        if (stats && !stats->mass_first_k.empty())
          *static_cast<float*>(stats->mass_first_k.at(b, h, i)) = float(r.mass_first_k[row]);
        if (stats && !stats->entropy.empty())
          *static_cast<float*>(stats->entropy.at(b, h, i)) = float(r.entropy[row]);
      }
      if (stats && !stats->column_sums.empty())
        for (int64_t j = 0; j < d.n_k; ++j)
          *static_cast<float*>(stats->column_sums.at(b, h, j)) =
              float(r.column_sums[size_t(bh * d.n_k + j)]);
    }
}

void write_grad(const TensorView& t, const std::vector<double>& g, int64_t heads, int64_t n,
                int64_t dim, const char* name) {
  if (t.empty()) return;
  check(t.dtype == DType::F32, std::string("attention backward: ") + name + " must be f32");
  size_t idx = 0;
  for (int64_t b = 0; b < t.shape[0]; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < n; ++i) {
        float* dst = static_cast<float*>(t.at(b, h, i));
        for (int64_t e = 0; e < dim; ++e) dst[e] = float(g[idx++]);
      }
}

void copy_out(float* dst, const std::vector<double>& src) {
  if (dst)
    for (size_t i = 0; i < src.size(); ++i) dst[i] = float(src[i]);
}

// A query row holding NaN makes every one of its logits NaN; the online softmax
// would take that for a fully hidden row (o = 0). The row's output is NaN, as
// in the float64 reference and in PyTorch. One scan of q: O(n_q * head_dim).
void propagate_nan_queries(const attn::Dims& d, const TensorView& q, const TensorView& o, const TensorView& lse) {
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t h = 0; h < d.n_heads; ++h)
      for (int64_t i = 0; i < d.n_q; ++i) {
        const void* row = q.at(b, h, i);
        bool nan = false;
        for (int64_t e = 0; e < d.head_dim && !nan; ++e) nan = std::isnan(attn::load_scalar(q.dtype, row, e));
        if (!nan) continue;
        void* out = o.at(b, h, i);
        for (int64_t e = 0; e < d.v_dim; ++e) {
          if (o.dtype == DType::BF16)
            static_cast<bf16*>(out)[e] = f32_to_bf16(NAN);
          else
            static_cast<float*>(out)[e] = NAN;
        }
        if (!lse.empty()) *static_cast<float*>(lse.at(b, h, i)) = NAN;
      }
}

}  // namespace

void attention_forward(const AttnSpec& spec, const TensorView& q, const TensorView& k,
                       const TensorView& v, const TensorView& o, const TensorView& lse,
                       AttnStats* stats, AttnImpl impl) {
  const attn::Dims d = attn::validate(spec, q, k, v);
  attn::validate_outputs(d, o, lse, stats);
  attn::check_inputs_finite(spec, d, q, k, v);
  check(impl != AttnImpl::Flash || spec.normalization == AttnNormalization::Softmax,
        "attention: ReLU attention runs only in the reference implementation");
  if (impl == AttnImpl::Reference || spec.normalization == AttnNormalization::Relu) {
    write_reference(d, attention_reference(spec, q, k, v, stats ? stats->first_k : 1), o, lse, stats);
    return;
  }
  const vec::SingleThreadedBlas blas_guard;
  attn::flash_forward(spec, d, q, k, v, o, lse, stats);
  propagate_nan_queries(d, q, o, lse);
}

void attention_backward(const AttnSpec& spec, const TensorView& q, const TensorView& k,
                        const TensorView& v, const TensorView& o, const TensorView& lse,
                        const TensorView& d_o, AttnGrads& g, AttnImpl impl) {
  const attn::Dims d = attn::validate(spec, q, k, v);
  check_view(o, "attention backward: o", {d.batch, d.n_heads, d.n_q, d.v_dim});
  check_view(lse, "attention backward: lse", {d.batch, d.n_heads, d.n_q});
  check(lse.dtype == DType::F32, "attention backward: lse must be f32");
  check_view(d_o, "attention backward: d_o", {d.batch, d.n_heads, d.n_q, d.v_dim});
  if (!g.dq.empty()) check_view(g.dq, "attention backward: dq", {d.batch, d.n_heads, d.n_q, d.head_dim}, true);
  if (!g.dk.empty()) check_view(g.dk, "attention backward: dk", {d.batch, d.n_kv_heads, d.n_k, d.head_dim}, true);
  if (!g.dv.empty()) check_view(g.dv, "attention backward: dv", {d.batch, d.n_kv_heads, d.n_k, d.v_dim}, true);
  if (!g.d_key_bias.empty()) {
    check_view(g.d_key_bias, "attention backward: d_key_bias", {d.batch, d.n_kv_heads, d.n_k}, true);
    check(g.d_key_bias.dtype == DType::F32, "attention backward: d_key_bias must be f32");
  }
  attn::check_inputs_finite(spec, d, q, k, v);
  check(impl != AttnImpl::Flash || spec.normalization == AttnNormalization::Softmax,
        "attention backward: ReLU attention runs only in the reference implementation");
  if (impl == AttnImpl::Reference || spec.normalization == AttnNormalization::Relu) {
    const ReferenceGrads r = attention_reference_backward(spec, q, k, v, d_o);
    write_grad(g.dq, r.dq, d.n_heads, d.n_q, d.head_dim, "dq");
    write_grad(g.dk, r.dk, d.n_kv_heads, d.n_k, d.head_dim, "dk");
    write_grad(g.dv, r.dv, d.n_kv_heads, d.n_k, d.v_dim, "dv");
    write_grad(g.d_key_bias.empty() ? TensorView{} : TensorView::strided(g.d_key_bias.data, DType::F32,
                   {d.batch, d.n_kv_heads, d.n_k, 1}, {g.d_key_bias.stride[0], g.d_key_bias.stride[1],
                   g.d_key_bias.stride[2], 1}),
               r.d_key_bias, d.n_kv_heads, d.n_k, 1, "d_key_bias");
    copy_out(g.d_sink_logits, r.d_sink_logits);
    copy_out(g.d_lambda_sym, r.d_lambda_sym);
    copy_out(g.d_lambda_asym, r.d_lambda_asym);
    copy_out(g.d_alibi_slopes, r.d_alibi_slopes);
    return;
  }
  const vec::SingleThreadedBlas blas_guard;
  attn::flash_backward(spec, d, q, k, v, o, lse, d_o, g);
}

}  // namespace sinklab
