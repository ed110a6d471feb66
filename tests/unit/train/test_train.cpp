// End-to-end training: checkpoints the runtime loads with the same math,
// a copy task learnt to near-zero loss, bit-exact resume, config errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "sinklab/model.h"
#include "sinklab/train.h"

namespace fs = std::filesystem;
using namespace sinklab;

namespace {

std::string temp_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("sinklab_train_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

// A few KB of word salad over a small vocabulary: enough for BPE and windows.
std::string write_text(const std::string& dir) {
  static const char* words[] = {"the", "king", "said", "unto", "them", "and", "she", "walked", "in", "garden",
                                "of", "a", "letter", "from", "Mr.", "Darcy", "was", "very", "glad", "light"};
  std::mt19937 rng(11);
  std::string text;
  for (int i = 0; i < 4000; ++i) {
    text += words[rng() % 20];
    text += (i % 13 == 12) ? ".\n" : " ";
  }
  const std::string path = dir + "/text.txt";
  std::ofstream(path) << text;
  return path;
}

TrainConfig tiny_config(const std::string& dir, AttnVariant v) {
  TrainConfig c;
  c.model.dim = 32;
  c.model.n_layers = 2;
  c.model.n_heads = 4;
  c.model.n_kv_heads = 2;
  c.model.seq_len = 24;
  c.model.variant = v;
  c.model.goat_rank = 4;
  c.model.goat_abs_rank = 3;
  c.model.goat_u_hidden = 8;
  c.train.train_text = write_text(dir);
  c.train.tokenizer_vocab = 300;
  c.train.batch_size = 4;
  c.train.steps = 6;
  c.train.lr = 1e-2f;
  c.train.warmup_steps = 2;
  c.train.eval_every = 0;
  c.train.eval_batches = 2;
  c.train.out_dir = dir + "/out";
  return c;
}

}  // namespace

class TrainVariant : public ::testing::TestWithParam<AttnVariant> {};

// The checkpoint loads in the runtime, and a Session scores a window exactly as
// the training forward does (same loss to float precision) for every variant.
TEST_P(TrainVariant, RuntimeReproducesTrainingLoss) {
  const std::string dir = temp_dir(std::string("rt_") + attn_variant_name(GetParam()));
  const TrainConfig cfg = tiny_config(dir, GetParam());
  train(cfg);
  const auto model = Model::load(cfg.train.out_dir);
  ASSERT_NE(model->tokenizer(), nullptr);
  TrainModelConfig mc = cfg.model;
  mc.vocab = model->config().vocab;
  TrainModel tm(mc, 99);
  tm.load_values(cfg.train.out_dir + "/model.safetensors");

  const int64_t T = mc.seq_len;
  std::vector<int32_t> ids = model->tokenizer()->encode("the king said unto them and she walked in garden of a letter", false);
  ASSERT_GE(int64_t(ids.size()), 8);
  ids.resize(size_t(std::min<int64_t>(T, int64_t(ids.size()))));
  if (GetParam() == AttnVariant::SinkToken) {
    ASSERT_GE(model->config().bos_id, 0) << "the sink token is the checkpoint's BOS";
    ids.insert(ids.begin(), model->config().bos_id);
    ids.pop_back();
  } else {
    EXPECT_EQ(model->config().bos_id, -1) << "only the sink-token variant has a BOS";
  }
  const int64_t n = int64_t(ids.size()) - 1;
  std::vector<int32_t> in(ids.begin(), ids.end() - 1), tg(ids.begin() + 1, ids.end());
  int64_t scored = 0;
  const double train_loss = tm.forward_loss(in.data(), tg.data(), 1, n, &scored);
  ASSERT_EQ(scored, n);

  Session s(model);
  std::vector<float> logits(1, NAN);
  s.feed(in, &logits);
  ASSERT_EQ(int64_t(logits.size()), n * model->config().vocab);
  double runtime_loss = 0;
  const int64_t V = model->config().vocab;
  for (int64_t i = 0; i < n; ++i) {
    const float* z = logits.data() + i * V;
    double m = z[0], sum = 0;
    for (int64_t j = 1; j < V; ++j) m = std::max(m, double(z[j]));
    for (int64_t j = 0; j < V; ++j) sum += std::exp(double(z[j]) - m);
    runtime_loss += m + std::log(sum) - z[tg[size_t(i)]];
  }
  EXPECT_NEAR(runtime_loss, train_loss, 1e-4 * std::abs(train_loss)) << attn_variant_name(GetParam());
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Variants, TrainVariant,
                         ::testing::Values(AttnVariant::Vanilla, AttnVariant::SinkToken, AttnVariant::SinkLogit,
                                           AttnVariant::Goat, AttnVariant::Alibi, AttnVariant::OffByOne,
                                           AttnVariant::ReluAttention),
                         [](const auto& info) {
                           std::string s = attn_variant_name(info.param);
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

// A 2-layer model learns to copy a random sequence after a separator.
TEST(Train, LearnsCopyTaskToNearZeroLoss) {
  TrainModelConfig mc;
  mc.vocab = 12;
  mc.dim = 48;
  mc.n_layers = 2;
  mc.n_heads = 4;
  mc.n_kv_heads = 4;
  mc.seq_len = 13;
  TrainOptions o;
  o.lr = 1e-2f;
  o.weight_decay = 0.f;
  o.warmup_steps = 10;
  o.steps = 250;
  TrainModel model(mc, 5);
  Optimizer opt(model, o);
  const int64_t B = 16, half = 6, T = 2 * half + 1;
  std::mt19937 rng(3);
  std::vector<int32_t> in(size_t(B * T)), tg(size_t(B * T));
  double loss = 0;
  for (int64_t step = 0; step < o.steps; ++step) {
    for (int64_t b = 0; b < B; ++b) {
      std::vector<int32_t> seq(size_t(T + 1));
      for (int64_t t = 0; t < half; ++t) seq[size_t(t)] = int32_t(1 + rng() % 10);
      seq[size_t(half)] = 11;  // separator
      for (int64_t t = 0; t < half; ++t) seq[size_t(half + 1 + t)] = seq[size_t(t)];
      seq[size_t(T)] = 0;
      for (int64_t t = 0; t < T; ++t) {
        in[size_t(b * T + t)] = seq[size_t(t)];
        // Only the copied half is predictable.
        tg[size_t(b * T + t)] = t >= half && t < T - 1 ? seq[size_t(t + 1)] : -1;
      }
    }
    model.zero_grad();
    int64_t n = 0;
    const double sum = model.forward_backward(in.data(), tg.data(), B, T, 1.f / float(B * half), &n);
    ASSERT_EQ(n, B * half);
    loss = sum / double(n);
    clip_grad_norm(model.grads(), 1.0);
    opt.step(model, learning_rate(o, step));
  }
  EXPECT_LT(loss, 0.05) << "copy task not learnt";
}

// A run interrupted after its step-3 checkpoint and resumed reproduces the
// uninterrupted losses bit for bit.
TEST(Train, ResumeContinuesTheSameLossCurve) {
  const std::string dir = temp_dir("resume");
  TrainConfig full = tiny_config(dir, AttnVariant::SinkLogit);
  full.train.log_every = 1;
  full.train.out_dir = dir + "/full";
  const TrainResult a = train(full);
  ASSERT_EQ(a.losses.size(), 6u);

  TrainConfig part = full;
  part.train.out_dir = dir + "/part";
  part.train.checkpoint_every = 3;
  struct Interrupt {};
  EXPECT_THROW(train(part, [](const TrainEvent& ev) {
                 if (ev.step == 3) throw Interrupt{};
               }),
               Interrupt);
  const TrainResult b = train(part);
  ASSERT_EQ(b.losses.size(), 3u) << "resumed at step 3 of 6";
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(b.losses[i], a.losses[3 + i]) << "step " << 4 + i;
  fs::remove_all(dir);
}

TEST(TrainConfigParse, RejectsBadConfigsWithClearErrors) {
  auto expect_error = [](const std::string& json, const std::string& needle) {
    try {
      parse_train_config(json, "cfg.json");
      FAIL() << "accepted: " << json;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const std::string train = R"("train": {"train_text": "a.txt", "out_dir": "o"})";
  expect_error("{", "not valid JSON");
  expect_error(R"({"model": {"dim": 30, "n_heads": 4}, )" + train + "}", "multiple of n_heads");
  expect_error(R"({"model": {"variant": "magic"}, )" + train + "}", "unknown attention variant 'magic'");
  expect_error(R"({"model": {"dims": 64}, )" + train + "}", "unknown key 'dims'");
  expect_error(R"({"model": {"dim": "big"}, )" + train + "}", "'dim' must be an integer");
  expect_error(R"({"model": {}, "train": {"out_dir": "o"}})", "train_text");
  expect_error(R"({"model": {}, "train": {"train_text": "a", "out_dir": "o", "lr": -1}})", "lr > 0");
  const TrainConfig ok = parse_train_config(R"({"model": {"variant": "goat"}, )" + train + "}", "cfg.json");
  EXPECT_FALSE(ok.model.rope) << "GOAT models have no RoPE";
  EXPECT_EQ(ok.model.n_kv_heads, ok.model.n_heads);
}

// Streaming caches with models that have no RoPE but a prior (GOAT, ALiBi):
// reindex after evictions equals a fresh run on the survivors at positions
// 0..n-1 (exact for one layer: deeper layers' cached keys also saw evicted
// tokens), and absolute equals a dense run with the same window mask.
class PriorStreaming : public ::testing::TestWithParam<AttnVariant> {};

TEST_P(PriorStreaming, PositionContractsHoldAfterEvictions) {
  const std::string dir = temp_dir(std::string("stream_") + attn_variant_name(GetParam()));
  TrainConfig cfg = tiny_config(dir, GetParam());
  cfg.model.n_layers = 1;
  cfg.train.steps = 3;
  train(cfg);
  const auto model = Model::load(cfg.train.out_dir);
  std::mt19937 rng(5);
  std::vector<int32_t> ids(40);
  for (auto& x : ids) x = int32_t(2 + rng() % uint32_t(model->config().vocab - 2));
  const int64_t W = 8;
  auto rel_err = [](std::span<const float> a, std::span<const float> b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
      den += double(b[i]) * b[i];
    }
    return std::sqrt(num / den);
  };
  SessionOptions reindex;
  reindex.cache = "window:window=" + std::to_string(W);
  Session streamed(model, reindex);
  ASSERT_EQ(streamed.positions(), PositionContract::Reindex) << "prior models default to reindex";
  SessionOptions absolute = reindex;
  absolute.positions = "absolute";
  Session streamed_abs(model, absolute);
  SessionOptions masked;
  masked.context = 64;
  masked.attn_window = W;
  Session dense_masked(model, masked);
  for (size_t t = 0; t < ids.size(); ++t) {
    streamed.feed(std::span<const int32_t>(&ids[t], 1));
    streamed_abs.feed(std::span<const int32_t>(&ids[t], 1));
    dense_masked.feed(std::span<const int32_t>(&ids[t], 1));
    if (t + 1 < size_t(W) + 3) continue;
    Session fresh(model);
    fresh.feed(std::span<const int32_t>(ids.data() + t + 1 - W, size_t(W)));
    EXPECT_LT(rel_err(streamed.logits(), fresh.logits()), 1e-4) << "reindex at token " << t;
    EXPECT_LT(rel_err(streamed_abs.logits(), dense_masked.logits()), 1e-4) << "absolute at token " << t;
  }
  SessionOptions shift = reindex;
  shift.positions = "shift";
  EXPECT_THROW(Session(model, shift), Error) << "shift needs RoPE";
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Priors, PriorStreaming, ::testing::Values(AttnVariant::Goat, AttnVariant::Alibi),
                         [](const auto& info) { return std::string(attn_variant_name(info.param)); });
