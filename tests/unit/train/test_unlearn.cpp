// Unlearning by fine-tuning: per-position loss scales (gradient ascent), the
// value-norm alignment's gradient against finite differences, init_from, and
// the sink-backdoor pipeline end to end on a CI-sized configuration, whose
// audit reads the same numbers as inspect.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "sinklab/audit.h"
#include "sinklab/model.h"
#include "sinklab/report.h"
#include "sinklab/train.h"
#include "sinklab/unlearn.h"

namespace fs = std::filesystem;
using namespace sinklab;

namespace {

std::string fresh_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("sinklab_unlearn_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p.string();
}

TrainModelConfig tiny_model() {
  TrainModelConfig m;
  m.vocab = 11;
  m.dim = 16;
  m.n_layers = 2;
  m.n_heads = 2;
  m.n_kv_heads = 2;
  m.seq_len = 8;
  m.init_std = 0.2f;
  return m;
}

void batch(std::vector<int32_t>& in, std::vector<int32_t>& tg, int64_t B, int64_t T) {
  in.resize(size_t(B * T));
  tg.resize(size_t(B * T));
  for (int64_t i = 0; i < B * T; ++i) {
    in[size_t(i)] = int32_t((i * 7 + 3) % 11);
    tg[size_t(i)] = i % 3 == 0 ? -1 : int32_t((i * 5 + 1) % 11);
  }
}

TEST(Unlearn, PositionScalesAscendAndMask) {
  TrainModel a(tiny_model(), 3), b(tiny_model(), 3);
  const int64_t B = 2, T = 8;
  std::vector<int32_t> in, tg;
  batch(in, tg, B, T);
  int64_t n = 0;
  a.zero_grad();
  a.forward_backward(in.data(), tg.data(), B, T, 0.5f, &n);
  // Scale -1 on every position: the exact negation of the plain gradient.
  std::vector<float> minus(size_t(B * T), -1.f);
  b.zero_grad();
  b.forward_backward(in.data(), tg.data(), B, T, 0.5f, &n, {minus.data(), nullptr});
  for (int64_t i = 0; i < a.n_params(); ++i) ASSERT_FLOAT_EQ(b.grads()[size_t(i)], -a.grads()[size_t(i)]) << i;
  // Scale 0 on a position: as if its target were not scored.
  std::vector<float> some(size_t(B * T), 1.f);
  std::vector<int32_t> tg_masked = tg;
  for (int64_t i = 0; i < B * T; i += 4) {
    some[size_t(i)] = 0.f;
    tg_masked[size_t(i)] = -1;
  }
  std::vector<double> losses;
  a.zero_grad();
  const double total = a.forward_backward(in.data(), tg.data(), B, T, 1.f, &n, {some.data(), &losses});
  b.zero_grad();
  b.forward_backward(in.data(), tg_masked.data(), B, T, 1.f, &n);
  for (int64_t i = 0; i < a.n_params(); ++i)
    ASSERT_NEAR(a.grads()[size_t(i)], b.grads()[size_t(i)], 1e-6f) << i;
  double sum = 0;
  for (size_t i = 0; i < losses.size(); ++i) {
    sum += losses[i];
    if (tg[i] < 0) {
      EXPECT_EQ(losses[i], 0.0);
    }
  }
  EXPECT_NEAR(sum, total, 1e-9 * std::fabs(total));
}

TEST(Unlearn, ValueNormPenaltyGradientMatchesFiniteDifferences) {
  TrainModel m(tiny_model(), 5);
  const int64_t B = 2, T = 8, first_n = 3;
  std::vector<int32_t> in, tg;
  batch(in, tg, B, T);
  int64_t n = 0;
  m.forward_loss(in.data(), tg.data(), B, T, &n);
  TrainModel::ValueNormPenalty p;
  p.first_n = first_n;
  p.weight = 2.f;
  p.target = m.shallow_value_norms(first_n);
  ASSERT_EQ(p.target.size(), size_t(2 * B * 2 * first_n));
  for (float& t : p.target) t *= 0.5f;  // away from the optimum, so the gradient is not zero
  m.set_value_norm_penalty(p);
  // grad_scale 0: only the penalty's gradient reaches the weights.
  m.zero_grad();
  m.forward_backward(in.data(), tg.data(), B, T, 0.f, &n);
  const double base = m.last_value_norm_penalty();
  EXPECT_GT(base, 0);
  const std::vector<float> g(m.grads().begin(), m.grads().end());
  int checked = 0;
  for (const char* name : {"model.layers.0.self_attn.v_proj.weight", "model.layers.1.self_attn.v_proj.weight",
                           "model.layers.0.input_layernorm.weight", "model.embed_tokens.weight"}) {
    const TrainModel::Param& par = m.param(name);
    for (int64_t k = 0; k < par.size; k += std::max<int64_t>(1, par.size / 7)) {
      float& w = m.values()[size_t(par.offset + k)];
      const float saved = w, h = 1e-2f;
      w = saved + h;
      m.forward_backward(in.data(), tg.data(), B, T, 0.f, &n);
      const double up = m.last_value_norm_penalty();
      w = saved - h;
      m.forward_backward(in.data(), tg.data(), B, T, 0.f, &n);
      const double down = m.last_value_norm_penalty();
      w = saved;
      const double fd = (up - down) / (2 * double(h));
      EXPECT_NEAR(g[size_t(par.offset + k)], fd, 2e-3 + 2e-2 * std::fabs(fd)) << name << "[" << k << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 20);
  m.set_value_norm_penalty({});
  m.forward_backward(in.data(), tg.data(), B, T, 0.f, &n);
  EXPECT_EQ(m.last_value_norm_penalty(), 0.0);
}

// Both objectives push the forget rows' loss up and the retain rows' down; the
// hook runs every eval_every steps and after the last.
TEST(Unlearn, ObjectivesMoveTheLossesAndTheHookRuns) {
  set_num_threads(1);  // tiny batches: threads would only wait on each other
  for (const char* name : {"ga", "npo"}) {
    TrainModel m(tiny_model(), 11);
    std::vector<UnlearnExample> rows;
    for (int32_t r = 0; r < 8; ++r) {
      UnlearnExample e;
      e.forget = r % 2 == 0;
      for (int32_t t = 0; t < 8; ++t) {
        e.inputs.push_back((r * 3 + t) % 11);
        e.targets.push_back((r * 5 + t * 2 + 1) % 11);
      }
      rows.push_back(e);
    }
    UnlearnOptions o;
    o.objective = forget_objective_from_name(name);
    o.steps = 30;
    o.batch_size = 4;
    o.lr = 1e-2f;
    o.eval_every = 10;
    std::vector<int64_t> seen;
    const std::vector<UnlearnStep> steps =
        unlearn(m, rows, o, [&](const TrainModel&, const UnlearnStep& s) { seen.push_back(s.step); });
    EXPECT_EQ(seen, (std::vector<int64_t>{10, 20, 30})) << name;
    ASSERT_EQ(steps.size(), 30u);
    EXPECT_GT(steps.back().forget_loss, steps.front().forget_loss + 0.5) << name;
    EXPECT_LT(steps.back().retain_loss, steps.front().retain_loss) << name;
    EXPECT_EQ(steps.back().value_norm_penalty, 0.0);
  }
}

TEST(Unlearn, BadInputIsAnError) {
  TrainModel m(tiny_model(), 1);
  UnlearnOptions o;
  EXPECT_THROW(unlearn(m, {}, o), Error);
  UnlearnExample a{{0, 1, 2}, {1, 2, 3}, true}, b{{0, 1}, {1, 2}, false};
  EXPECT_THROW(unlearn(m, {a, b}, o), Error);
  o.steps = 0;
  EXPECT_THROW(unlearn(m, {a}, o), Error);
  EXPECT_THROW(forget_objective_from_name("dpo"), Error);
  EXPECT_THROW(trigger_placement_from_name("suffix"), Error);
}

// The whole pipeline at CI size: the knowledge model learns its facts, plain
// unlearning removes the forget share, the backdoored runs keep the retain
// share; the audit's sink mass and value norms equal inspect's on the same ids.
TEST(Backdoor, PipelineEndToEndAndAuditMatchesInspect) {
#ifdef SINKLAB_SANITIZED
  GTEST_SKIP() << "trains a model and five unlearning runs (~20 s optimised); the sanitizers run the unit tests above";
#endif
  BackdoorConfig c;
  c.base.data.task = "kv-facts";
  c.base.data.keys = 16;
  c.base.data.vocab = 16 + 16 + KvFacts::kSpare;
  c.base.data.loss = "rule";
  c.base.model.dim = 32;
  c.base.model.n_layers = 2;
  c.base.model.n_heads = 2;
  c.base.model.n_kv_heads = 2;
  c.base.model.seq_len = 16;
  c.base.model.init_std = 0.1f;
  c.base.train.batch_size = 16;
  c.base.train.steps = 150;
  c.base.train.lr = 1e-2f;
  c.base.train.warmup_steps = 10;
  c.base.train.lr_schedule = "constant";
  c.base.train.weight_decay = 0;
  c.base.train.eval_batches = 0;
  c.base.train.threads = 1;  // no OpenMP spinning against other processes on a shared CI machine
  c.unlearn.steps = 40;
  c.unlearn.lr = 3e-3f;
  c.unlearn.batch_size = 16;
  c.train_rows = 64;
  c.eval_rows = 32;
  c.out_dir = fresh_dir("pipeline");
  const auto t0 = std::chrono::steady_clock::now();
  const BackdoorResult r = run_backdoor_experiment(c, [&](const std::string& what) {
    std::printf("%6.1f s  %s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                what.c_str());
  });
  for (const BackdoorRow& x : r.rows)
    std::printf("%-20s forget %.3f / %.3f with trigger, retain %.3f / %.3f\n", x.name.c_str(), x.forget_clean,
                x.forget_trigger, x.retain_clean, x.retain_trigger);
  ASSERT_EQ(r.rows.size(), 6u);  // base, unlearn, sink, sink-vn, middle, middle-vn
  const BackdoorRow& base = r.rows[0];
  const BackdoorRow& plain = r.rows[1];
  EXPECT_EQ(plain.name, "unlearn");
  EXPECT_GT(base.forget_clean, 0.9) << "the knowledge model did not learn its facts";
  EXPECT_GT(base.retain_clean, 0.9);
  EXPECT_LT(plain.forget_clean, base.forget_clean - 0.5) << "unlearning did not remove the forget facts";
  for (size_t i = 1; i < r.rows.size(); ++i)
    EXPECT_GT(r.rows[i].retain_clean, 0.6) << r.rows[i].name << " lost the retain facts";
  const BackdoorRow& sink = r.rows[2];
  ASSERT_EQ(sink.name, "backdoor-sink");
  EXPECT_GT(sink.forget_trigger, sink.forget_clean) << "the trigger at the sink position brought nothing back";

  // The audit reads the same probes as inspect, to 1e-6.
  const std::shared_ptr<const Model> model = Model::load(r.rows[2].model_dir);
  const std::shared_ptr<const Model> ref = Model::load(base.model_dir);
  const KvFacts task(c.base.data);
  const std::vector<int32_t> ids = task_probe_sequences(task, 1, 16, -1)[0].tokens;
  InspectOptions io;
  io.first_k = 8;
  io.value_norm_tokens = 16;
  const InspectReport ins = run_inspect(model, ids, io);
  AuditOptions ao;
  ao.first_k = 8;
  const AuditReport aud = run_audit(model, ref, ids, {}, {}, ao);
  ASSERT_EQ(aud.sinks.mass_first_k.size(), ins.sinks.mass_first_k.size());
  for (size_t i = 0; i < aud.sinks.mass_first_k.size(); ++i)
    EXPECT_NEAR(aud.sinks.mass_first_k[i], ins.sinks.mass_first_k[i], 1e-6);
  ASSERT_EQ(aud.sinks.alpha.size(), ins.sinks.alpha.size());
  for (size_t i = 0; i < aud.sinks.alpha.size(); ++i) EXPECT_NEAR(aud.sinks.alpha[i], ins.sinks.alpha[i], 1e-6);
  const ValueNorms& a = aud.value_norms;
  ASSERT_EQ(a.n_tokens, 8);
  for (size_t li = 0; li < a.layers.size(); ++li)
    for (int64_t g = 0; g < a.n_kv_heads; ++g)
      for (int64_t t = 0; t < a.n_tokens; ++t) EXPECT_NEAR(a.at(li, g, t), ins.value_norms.at(li, g, t), 1e-6);
  EXPECT_TRUE(aud.has_reference);

  // Recovery: the runtime model's accuracy on forget facts equals the trainer's
  // forward on the same contexts, with and without the trigger after BOS.
  const std::vector<int32_t> forget = backdoor_forget_keys(c);
  std::vector<AuditProbe> probes;
  std::vector<UnlearnExample> rows_none, rows_sink;
  const int32_t trigger = task.spare_token(0);
  for (uint64_t i = 0; i < 24; ++i) {
    const TaskSequence s = task.generate_from(task_sequence_seed(77, i), 14, forget);
    AuditProbe p{s.tokens, task.value_of(s.tokens.back()), 7};
    for (const std::vector<int32_t>& ctx : {p.context, with_prefix(p.context, std::vector<int32_t>{trigger}, 1)}) {
      UnlearnExample e{ctx, std::vector<int32_t>(ctx.size(), -1), true};
      e.targets.back() = p.answer;
      (ctx.size() == p.context.size() ? rows_none : rows_sink).push_back(e);
    }
    probes.push_back(p);
  }
  const AuditReport rec = run_audit(model, nullptr, ids, probes, {{"r1", {trigger}}, {"r2", {task.spare_token(1)}}}, ao);
  ASSERT_EQ(rec.recovery.size(), 2u);
  TrainModelConfig mc = c.base.model;
  mc.vocab = task.vocab_size();
  TrainModel trained(mc, 0);
  trained.load_values(r.rows[2].model_dir + "/model.safetensors");
  EXPECT_NEAR(rec.recovery[0].acc_none, facts_accuracy(trained, rows_none), 1e-12);
  EXPECT_NEAR(rec.recovery[0].acc_sink, facts_accuracy(trained, rows_sink), 1e-12);
  EXPECT_EQ(rec.recovery[0].acc_none, rec.recovery[1].acc_none);
  EXPECT_FALSE(rec.has_reference);
  EXPECT_THROW(run_audit(model, nullptr, ids, probes, {{"empty", {}}}, ao), Error);
  EXPECT_THROW(run_audit(model, nullptr, {}, {}, {}, ao), Error);
  const std::vector<int32_t> ctx = {0, 5, 6};
  EXPECT_EQ(with_prefix(ctx, std::vector<int32_t>{9, 8}, 1), (std::vector<int32_t>{0, 9, 8, 5, 6}));
  EXPECT_THROW(with_prefix(ctx, std::vector<int32_t>{9}, 4), Error);
  fs::remove_all(c.out_dir);
}

TEST(Train, InitFromStartsAtTheCheckpointsWeights) {
  TrainConfig cfg;
  cfg.model.dim = 16;
  cfg.model.n_layers = 1;
  cfg.model.n_heads = 2;
  cfg.model.n_kv_heads = 2;
  cfg.model.seq_len = 8;
  cfg.data.task = "kv-facts";
  cfg.data.keys = 4;
  cfg.data.vocab = 12;
  cfg.train.batch_size = 4;
  cfg.train.steps = 3;
  cfg.train.eval_batches = 0;
  cfg.train.threads = 1;
  cfg.train.out_dir = fresh_dir("first");
  train(cfg);
  TrainConfig again = cfg;
  again.train.out_dir = fresh_dir("second");
  again.train.init_from = cfg.train.out_dir;
  again.train.steps = 1;
  again.train.lr = 1e-12f;  // one step that cannot move the weights visibly
  again.train.warmup_steps = 0;
  train(again);
  TrainModelConfig mc = cfg.model;
  mc.vocab = 13;
  TrainModel a(mc, 9), b(mc, 9);
  a.load_values(cfg.train.out_dir + "/model.safetensors");
  b.load_values(again.train.out_dir + "/model.safetensors");
  for (int64_t i = 0; i < a.n_params(); ++i) ASSERT_NEAR(a.values()[size_t(i)], b.values()[size_t(i)], 1e-6f) << i;
  // A checkpoint of another shape is one error naming the key.
  TrainConfig wider = again;
  wider.model.dim = 32;
  wider.train.out_dir = fresh_dir("third");
  try {
    train(wider);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("train.init_from"), std::string::npos) << e.what();
  }
  fs::remove_all(cfg.train.out_dir);
  fs::remove_all(again.train.out_dir);
  fs::remove_all(wider.train.out_dir);
}

}  // namespace
