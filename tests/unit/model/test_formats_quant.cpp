// Dequantization of ggml block types, checked against blocks packed here by
// simple reference quantizers written independently of the decoder.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "sinklab/formats.h"

using namespace sinklab;

namespace {

// Stores x as f16 at p and returns the value the decoder will see.
float put_f16(uint8_t* p, float x) {
  const f16 h = f32_to_f16(x);
  std::memcpy(p, &h.bits, 2);
  return f16_to_f32(h);
}

std::vector<float> random_vector(size_t n, unsigned seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

TensorEntry entry(TensorType t, std::vector<int64_t> shape, const std::vector<uint8_t>& bytes) {
  return TensorEntry{"t", t, std::move(shape), bytes.data(), bytes.size()};
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want, float tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], tol) << "element " << i;
}

// Q8_0: d = amax / 127, q = round(x / d).
void quantize_q8_0(const float* x, uint8_t* block, float* expect) {
  float amax = 0;
  for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float d = put_f16(block, amax / 127.f);
  for (int i = 0; i < 32; ++i) {
    const int q = std::clamp(int(std::lround(x[i] / d)), -127, 127);
    block[2 + i] = uint8_t(int8_t(q));
    expect[i] = d * float(q);
  }
}

// Q4_0: d = amax / 7, q = round(x / d) + 8 in 0..15; element i < 16 in the
// low nibble of byte i, element 16 + i in its high nibble.
void quantize_q4_0(const float* x, uint8_t* block, float* expect) {
  float amax = 0;
  for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float d = put_f16(block, amax / 7.f);
  int q[32];
  for (int i = 0; i < 32; ++i) {
    q[i] = std::clamp(int(std::lround(x[i] / d)) + 8, 0, 15);
    expect[i] = d * float(q[i] - 8);
  }
  for (int i = 0; i < 16; ++i) block[2 + i] = uint8_t(q[i] | (q[i + 16] << 4));
}

// Q4_K: per 32-element sub-block an unsigned 4-bit code with a 6-bit scale
// and a 6-bit min, both relative to the super-block's f16 d and dmin.
void quantize_q4_k(const float* x, uint8_t* block, float* expect) {
  float scale[8], minv[8];
  for (int j = 0; j < 8; ++j) {
    float lo = 0, hi = 0;
    for (int l = 0; l < 32; ++l) {
      lo = std::min(lo, x[32 * j + l]);
      hi = std::max(hi, x[32 * j + l]);
    }
    scale[j] = (hi - lo) / 15.f;
    minv[j] = -lo;
  }
  const float d = put_f16(block, *std::max_element(scale, scale + 8) / 63.f);
  const float dmin = put_f16(block + 2, *std::max_element(minv, minv + 8) / 63.f);
  int ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    ls[j] = std::clamp(int(std::lround(scale[j] / d)), 1, 63);
    lm[j] = dmin > 0 ? std::clamp(int(std::lround(minv[j] / dmin)), 0, 63) : 0;
  }
  uint8_t* s = block + 4;
  std::memset(s, 0, 12);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      s[j] = uint8_t(ls[j]);
      s[j + 4] = uint8_t(lm[j]);
    } else {
      s[j + 4] = uint8_t((ls[j] & 0x0f) | ((lm[j] & 0x0f) << 4));
      s[j - 4] |= uint8_t((ls[j] >> 4) << 6);
      s[j] |= uint8_t((lm[j] >> 4) << 6);
    }
  }
  int q[256];
  for (int i = 0; i < 256; ++i) {
    const int j = i / 32;
    const float sc = d * float(ls[j]), mn = dmin * float(lm[j]);
    q[i] = std::clamp(int(std::lround((x[i] + mn) / sc)), 0, 15);
    expect[i] = sc * float(q[i]) - mn;
  }
  uint8_t* qs = block + 16;
  for (int pair = 0; pair < 4; ++pair)
    for (int l = 0; l < 32; ++l) qs[32 * pair + l] = uint8_t(q[64 * pair + l] | (q[64 * pair + 32 + l] << 4));
}

// Q6_K: per 16-element group a signed 8-bit scale; codes q in -32..31 stored
// as q + 32 split into 4 low bits (ql) and 2 high bits (qh).
void quantize_q6_k(const float* x, uint8_t* block, float* expect) {
  float scale[16];
  for (int g = 0; g < 16; ++g) {
    float amax = 0;
    for (int l = 0; l < 16; ++l) amax = std::max(amax, std::fabs(x[16 * g + l]));
    scale[g] = amax / 31.f;
    if (g % 3 == 1) scale[g] = -scale[g];  // negative scales are legal and exercise the int8 sign
  }
  float smax = 0;
  for (float s : scale) smax = std::max(smax, std::fabs(s));
  const float d = put_f16(block + 208, smax / 127.f);
  int8_t* sc = reinterpret_cast<int8_t*>(block + 192);
  int L[256];
  for (int g = 0; g < 16; ++g) {
    sc[g] = int8_t(std::clamp(int(std::lround(scale[g] / d)), -127, 127));
    if (sc[g] == 0) sc[g] = 1;
    for (int l = 0; l < 16; ++l) {
      const int i = 16 * g + l;
      const float step = d * float(sc[g]);
      const int q = std::clamp(int(std::lround(x[i] / step)), -32, 31);
      L[i] = q + 32;
      expect[i] = step * float(q);
    }
  }
  uint8_t* ql = block;
  uint8_t* qh = block + 128;
  for (int half = 0; half < 2; ++half) {
    const int* Lh = L + 128 * half;
    for (int l = 0; l < 32; ++l) {
      ql[64 * half + l] = uint8_t((Lh[l] & 0x0f) | ((Lh[l + 64] & 0x0f) << 4));
      ql[64 * half + l + 32] = uint8_t((Lh[l + 32] & 0x0f) | ((Lh[l + 96] & 0x0f) << 4));
      qh[32 * half + l] = uint8_t((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) |
                                  ((Lh[l + 96] >> 4) << 6));
    }
  }
}

using Quantizer = void (*)(const float*, uint8_t*, float*);

// Quantizes `blocks` blocks of random data (each block scaled differently),
// dequantizes the [blocks, block_size] tensor and compares.
void check_round_trip(TensorType t, Quantizer quantize, int blocks, float max_err) {
  const int64_t bs = tensor_type_block_size(t);
  const size_t bb = tensor_type_block_bytes(t);
  std::vector<float> x = random_vector(size_t(bs * blocks), 42);
  for (int64_t i = 0; i < bs * blocks; ++i) x[size_t(i)] *= 0.25f + float((i / 32) % 8) * 0.4f;  // uneven sub-blocks
  std::vector<uint8_t> bytes(bb * size_t(blocks));
  std::vector<float> expect(x.size());
  for (int b = 0; b < blocks; ++b) quantize(x.data() + b * bs, bytes.data() + size_t(b) * bb, expect.data() + b * bs);
  std::vector<float> got(x.size(), NAN);
  dequantize(entry(t, {blocks, bs}, bytes), got.data());
  expect_close(got, expect, 1e-5f);
  expect_close(got, x, max_err);

  std::vector<bf16> half(x.size());
  dequantize_to_bf16(entry(t, {blocks, bs}, bytes), half.data());
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(half[i].bits, f32_to_bf16(got[i]).bits) << i;
}

}  // namespace

TEST(FormatsQuant, TypeTable) {
  EXPECT_STREQ(tensor_type_name(TensorType::Q4_K), "Q4_K");
  EXPECT_EQ(tensor_type_block_size(TensorType::Q8_0), 32);
  EXPECT_EQ(tensor_type_block_bytes(TensorType::Q8_0), 34u);
  EXPECT_EQ(tensor_type_block_bytes(TensorType::Q4_0), 18u);
  EXPECT_EQ(tensor_type_block_bytes(TensorType::Q4_K), 144u);
  EXPECT_EQ(tensor_type_block_bytes(TensorType::Q6_K), 210u);
  EXPECT_EQ(tensor_type_block_size(TensorType::Q6_K), 256);
  EXPECT_FALSE(tensor_type_is_quantized(TensorType::BF16));
  for (TensorType t : {TensorType::F32, TensorType::F16, TensorType::BF16, TensorType::Q8_0, TensorType::Q4_0,
                       TensorType::Q4_K, TensorType::Q6_K})
    EXPECT_EQ(tensor_type_from_ggml_id(tensor_type_ggml_id(t), "x"), t);
  EXPECT_EQ(tensor_type_ggml_id(TensorType::BF16), 30u);
  EXPECT_EQ(tensor_type_ggml_id(TensorType::Q6_K), 14u);
  try {
    tensor_type_from_ggml_id(3, "tensor 'w'");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Q4_1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("tensor 'w'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tensor_type_from_ggml_id(999, "x"), Error);
  EXPECT_EQ(tensor_type_nbytes(TensorType::Q4_K, 512, "x"), 288u);
  EXPECT_THROW(tensor_type_nbytes(TensorType::Q4_K, 100, "x"), Error);
  EXPECT_THROW(tensor_type_nbytes(TensorType::F32, int64_t(1) << 62, "x"), Error);
}

TEST(FormatsQuant, Q4_0NibbleOrderByHand) {
  // d = 1; byte i holds low nibble i and high nibble 15 - i.
  std::vector<uint8_t> b(18);
  put_f16(b.data(), 1.0f);
  for (int i = 0; i < 16; ++i) b[2 + i] = uint8_t(i | ((15 - i) << 4));
  std::vector<float> y(32);
  dequantize(entry(TensorType::Q4_0, {32}, b), y.data());
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(y[i], float(i - 8));
    EXPECT_EQ(y[16 + i], float(7 - i));
  }
}

TEST(FormatsQuant, Q8_0ByHand) {
  std::vector<uint8_t> b(34);
  put_f16(b.data(), 0.5f);
  for (int i = 0; i < 32; ++i) b[2 + i] = uint8_t(int8_t(i - 16));
  std::vector<float> y(32);
  dequantize(entry(TensorType::Q8_0, {32}, b), y.data());
  for (int i = 0; i < 32; ++i) EXPECT_EQ(y[i], 0.5f * float(i - 16));
}

TEST(FormatsQuant, Q4_KScalePackingByHand) {
  // Sub-block j gets scale 60 - j and min j + 10 (values >= 16 use the
  // spare top bits for j >= 4); all codes 1, d = dmin = 1.
  float x[256] = {};
  std::vector<uint8_t> b(144, 0);
  put_f16(b.data(), 1.f);
  put_f16(b.data() + 2, 1.f);
  uint8_t* s = b.data() + 4;
  for (int j = 0; j < 8; ++j) {
    const int ls = 60 - j, lm = j + 10;
    if (j < 4) {
      s[j] = uint8_t(ls);
      s[j + 4] = uint8_t(lm);
    } else {
      s[j + 4] = uint8_t((ls & 15) | ((lm & 15) << 4));
      s[j - 4] |= uint8_t((ls >> 4) << 6);
      s[j] |= uint8_t((lm >> 4) << 6);
    }
  }
  for (int i = 0; i < 128; ++i) b[16 + i] = 0x11;
  dequantize(entry(TensorType::Q4_K, {256}, b), x);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(x[i], float(60 - i / 32) - float(i / 32 + 10)) << i;
}

TEST(FormatsQuant, Q8_0RoundTrip) { check_round_trip(TensorType::Q8_0, quantize_q8_0, 6, 0.02f); }
TEST(FormatsQuant, Q4_0RoundTrip) { check_round_trip(TensorType::Q4_0, quantize_q4_0, 6, 0.25f); }
TEST(FormatsQuant, Q4_KRoundTrip) { check_round_trip(TensorType::Q4_K, quantize_q4_k, 3, 0.25f); }
TEST(FormatsQuant, Q6_KRoundTrip) { check_round_trip(TensorType::Q6_K, quantize_q6_k, 3, 0.06f); }

TEST(FormatsQuant, FloatTypes) {
  const std::vector<float> x = {1.5f, -2.25f, 0.f, 65504.f, 1e-3f};
  std::vector<uint8_t> f16b(x.size() * 2), bf16b(x.size() * 2), f32b(x.size() * 4 + 1);
  for (size_t i = 0; i < x.size(); ++i) {
    const f16 h = f32_to_f16(x[i]);
    const bf16 b = f32_to_bf16(x[i]);
    std::memcpy(&f16b[2 * i], &h.bits, 2);
    std::memcpy(&bf16b[2 * i], &b.bits, 2);
    std::memcpy(&f32b[1 + 4 * i], &x[i], 4);  // deliberately misaligned
  }
  std::vector<float> y(x.size());
  dequantize(TensorEntry{"a", TensorType::F32, {5}, f32b.data() + 1, 20}, y.data());
  EXPECT_EQ(y, x);
  dequantize(entry(TensorType::F16, {5}, f16b), y.data());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], f16_to_f32(f32_to_f16(x[i])));
  dequantize(entry(TensorType::BF16, {5}, bf16b), y.data());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], bf16_to_f32(f32_to_bf16(x[i])));
}

TEST(FormatsQuant, RejectsInconsistentEntry) {
  std::vector<uint8_t> b(33);
  std::vector<float> y(32);
  try {
    dequantize(TensorEntry{"blk.0.w", TensorType::Q8_0, {32}, b.data(), b.size()}, y.data());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blk.0.w"), std::string::npos) << e.what();
  }
  EXPECT_THROW(dequantize(TensorEntry{"w", TensorType::Q4_K, {100}, b.data(), 0}, y.data()), Error);
}
