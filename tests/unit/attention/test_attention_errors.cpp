// Bad input to the attention entry points: one clear Error, never a crash.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "sinklab/attention.h"

using namespace sinklab;

namespace {

struct Buffers {
  std::vector<float> q = std::vector<float>(2 * 4 * 8 * 16, 0.1f);
  std::vector<float> k = std::vector<float>(2 * 2 * 8 * 16, 0.1f);
  std::vector<float> v = std::vector<float>(2 * 2 * 8 * 16, 0.1f);
  std::vector<float> o = std::vector<float>(2 * 4 * 8 * 16, 0.f);
  TensorView qv{q.data(), DType::F32, {2, 4, 8, 16}};
  TensorView kv{k.data(), DType::F32, {2, 2, 8, 16}};
  TensorView vv{v.data(), DType::F32, {2, 2, 8, 16}};
  TensorView ov{o.data(), DType::F32, {2, 4, 8, 16}};
};

void expect_error(const std::function<void()>& f, const std::string& fragment) {
  try {
    f();
    ADD_FAILURE() << "expected an Error mentioning '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(AttentionErrors, Shapes) {
  Buffers b;
  AttnSpec s;
  EXPECT_NO_THROW(attention_forward(s, b.qv, b.kv, b.vv, b.ov));
  TensorView k3(b.k.data(), DType::F32, {2, 3, 8, 10});
  expect_error([&] { attention_forward(s, b.qv, k3, b.vv, b.ov); }, "head_dim");
  TensorView k3h(b.k.data(), DType::F32, {2, 3, 5, 16});
  TensorView v3h(b.v.data(), DType::F32, {2, 3, 5, 16});
  expect_error([&] { attention_forward(s, b.qv, k3h, v3h, b.ov); }, "must divide");
  TensorView vbad(b.v.data(), DType::F32, {2, 2, 7, 16});
  expect_error([&] { attention_forward(s, b.qv, b.kv, vbad, b.ov); }, "v");
  TensorView obad(b.o.data(), DType::F32, {2, 4, 8, 15});
  expect_error([&] { attention_forward(s, b.qv, b.kv, b.vv, obad); }, "attention: o");
  TensorView q3(b.q.data(), DType::F32, {8, 8, 16});
  expect_error([&] { attention_forward(s, q3, b.kv, b.vv, b.ov); }, "rank");
  std::vector<float> big(size_t(1 * 1 * 1 * 300));
  TensorView qbig(big.data(), DType::F32, {1, 1, 1, 300});
  expect_error([&] { attention_forward(s, qbig, qbig, qbig, qbig); }, "1..256");
}

TEST(AttentionErrors, NullAndAliasingStrides) {
  Buffers b;
  AttnSpec s;
  TensorView nullq = b.qv;
  nullq.data = nullptr;
  expect_error([&] { attention_forward(s, nullq, b.kv, b.vv, b.ov); }, "null");
  TensorView oalias = TensorView::strided(b.o.data(), DType::F32, {2, 4, 8, 16}, {0, 0, 16, 1});
  expect_error([&] { attention_forward(s, b.qv, b.kv, b.vv, oalias); }, "overlap");
}

TEST(AttentionErrors, NanWhenAsked) {
  Buffers b;
  AttnSpec s;
  b.k[37] = NAN;
  EXPECT_NO_THROW(attention_forward(s, b.qv, b.kv, b.vv, b.ov));
  s.check_finite = true;
  expect_error([&] { attention_forward(s, b.qv, b.kv, b.vv, b.ov); }, "non-finite");
}

TEST(AttentionErrors, SpecFields) {
  Buffers b;
  AttnSpec s;
  s.window = -1;
  expect_error([&] { attention_forward(s, b.qv, b.kv, b.vv, b.ov); }, "window");
  s = {};
  s.rope.style = RopeStyle::RotateHalf;
  s.rope.rotary_dim = 7;
  expect_error([&] { attention_forward(s, b.qv, b.kv, b.vv, b.ov); }, "rotary_dim");
  s = {};
  s.goat.rank = 3;
  expect_error([&] { attention_forward(s, b.qv, b.kv, b.vv, b.ov); }, "lambda");
  s = {};
  std::vector<float> u(5);
  s.key_bias = TensorView(u.data(), DType::F32, {1, 2, 5});
  expect_error([&] { attention_forward(s, b.qv, b.kv, b.vv, b.ov); }, "key_bias");
}
