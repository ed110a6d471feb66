// Training on synthetic tasks: batches that follow the task's loss rule, the
// SGD and constant-schedule levers, and training-time sink probes equal to the
// probe `sinklab inspect` runs on the saved checkpoint.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sinklab/formats.h"
#include "sinklab/model.h"
#include "sinklab/train.h"

namespace fs = std::filesystem;
using namespace sinklab;

namespace {

std::string fresh_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("sinklab_tasks_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p.string();
}

TaskConfig bb(const char* loss = "all") {
  TaskConfig c;
  c.task = "bigram-backcopy";
  c.vocab = 16;
  c.triggers = 2;
  c.loss = loss;
  return c;
}

// A tiny Bigram-Backcopy run: dim 16, `layers` layers of `heads` heads (as many
// kv heads), training length `seq`, no warm-up, no evaluation, one thread.
TrainConfig tiny_run(const std::string& name, int64_t layers, int64_t heads, int64_t seq, int64_t batch,
                     int64_t steps) {
  TrainConfig cfg;
  cfg.model.dim = 16;
  cfg.model.n_layers = layers;
  cfg.model.n_heads = heads;
  cfg.model.n_kv_heads = heads;
  cfg.model.seq_len = seq;
  cfg.data = bb();
  cfg.train.batch_size = batch;
  cfg.train.steps = steps;
  cfg.train.warmup_steps = 0;
  cfg.train.eval_batches = 0;
  cfg.train.out_dir = fresh_dir(name);
  cfg.train.threads = 1;
  return cfg;
}

TEST(TaskBatch, RuleLossScoresOnlyCopiesAndSinkTokenLeads) {
  const auto task = make_task(bb("rule"));
  const auto* chain = dynamic_cast<const BigramBackcopy*>(task.get());
  ASSERT_NE(chain, nullptr);
  const int64_t B = 4, T = 40;
  std::vector<int32_t> in(size_t(B * T), -7), tg(size_t(B * T), -7);
  sample_task_batch(*task, 1, 3, 0, B, T, -1, in.data(), tg.data());
  int64_t scored = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const int32_t x = in[size_t(b * T + t)], y = tg[size_t(b * T + t)];
      EXPECT_EQ(x == SyntheticTask::kBos, t == 0);
      if (chain->is_trigger(x) && t > 0) {
        EXPECT_EQ(y, in[size_t(b * T + t - 1)]) << "a trigger's target is the token before it";
        ++scored;
      } else {
        EXPECT_EQ(y, -1) << "free query scored under loss 'rule' at " << t;
      }
      if (t + 1 < T && y >= 0) {
        EXPECT_EQ(y, in[size_t(b * T + t + 1)]);
      }
    }
  EXPECT_GT(scored, 0);
  // The sink token comes first, BOS second and unscored; the same seed gives the same task tokens.
  const int32_t sink = int32_t(task->vocab_size());
  std::vector<int32_t> in2(size_t(B * T)), tg2(size_t(B * T));
  sample_task_batch(*task, 1, 3, 0, B, T, sink, in2.data(), tg2.data());
  for (int64_t b = 0; b < B; ++b) {
    EXPECT_EQ(in2[size_t(b * T)], sink);
    EXPECT_EQ(tg2[size_t(b * T)], -1);
    EXPECT_EQ(in2[size_t(b * T + 1)], SyntheticTask::kBos);
    for (int64_t t = 1; t < T; ++t) EXPECT_EQ(in2[size_t(b * T + t)], in[size_t(b * T + t - 1)]);
  }
  // Evaluation batches (negative steps) differ from training batches.
  std::vector<int32_t> in3(size_t(B * T)), tg3(size_t(B * T));
  sample_task_batch(*task, 1, -1, 0, B, T, -1, in3.data(), tg3.data());
  EXPECT_NE(in3, in);
}

TEST(Optimizer, SgdWithMomentumAndConstantSchedule) {
  TrainModelConfig mc;
  mc.vocab = 8;
  mc.dim = 8;
  mc.n_layers = 1;
  mc.n_heads = 2;
  mc.n_kv_heads = 2;
  mc.seq_len = 4;
  TrainModel model(mc, 3);
  TrainOptions o;
  o.optimizer = "sgd";
  o.momentum = 0.5f;
  o.weight_decay = 0.f;
  o.lr_schedule = "constant";
  o.warmup_steps = 2;
  o.steps = 100;
  o.lr = 0.1f;
  EXPECT_FLOAT_EQ(learning_rate(o, 0), 0.05f);
  EXPECT_FLOAT_EQ(learning_rate(o, 50), 0.1f);
  EXPECT_FLOAT_EQ(learning_rate(o, 99), 0.1f);
  Optimizer opt(model, o);
  const std::vector<float> w0(model.values().begin(), model.values().end());
  for (float& g : model.grads()) g = 1.f;
  opt.step(model, 0.1f);  // m = 1: w -= 0.1
  opt.step(model, 0.1f);  // m = 0.5 + 1 = 1.5: w -= 0.15
  for (size_t i = 0; i < w0.size(); ++i) ASSERT_NEAR(model.values()[i], w0[i] - 0.25f, 1e-6f) << i;
}

TEST(TrainTask, ProbesDuringTrainingEqualInspectOnTheCheckpoint) {
  for (const char* variant : {"vanilla", "sink-token", "sink-logit"}) {
    TrainConfig cfg = tiny_run(std::string("probe_") + variant, 2, 2, 24, 4, 12);
    cfg.model.variant = attn_variant_from_name(variant);
    cfg.train.lr = 1e-2f;
    cfg.train.eval_batches = 1;
    cfg.train.probe_every = 5;
    cfg.train.probe_sequences = 3;
    train(cfg);
    std::ifstream in(cfg.train.out_dir + "/probes.json");
    ASSERT_TRUE(in.good());
    const nlohmann::json doc = nlohmann::json::parse(in);
    const auto& recs = doc.at("records");
    std::vector<int64_t> steps;
    for (const auto& r : recs) steps.push_back(r.at("step").get<int64_t>());
    EXPECT_EQ(steps, (std::vector<int64_t>{0, 5, 10, 12})) << variant;
    ASSERT_TRUE(fs::exists(cfg.train.out_dir + "/probes.html"));
    ASSERT_TRUE(fs::exists(cfg.train.out_dir + "/task.json"));
    // The saved checkpoint, loaded from disk, probed as `sinklab inspect` does.
    const auto model = Model::load(cfg.train.out_dir);
    const SinkEmergence e = task_sink_emergence(model, load_task_config_beside(cfg.train.out_dir), 3);
    const nlohmann::json& last = recs.back().at("emergence");
    auto expect_close = [&](const char* key, const std::vector<double>& got) {
      const auto& want = last.at(key);
      ASSERT_EQ(want.size(), got.size()) << key;
      for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(want[i].get<double>(), got[i], 1e-5) << variant << " " << key << i;
    };
    expect_close("alpha_free", e.alpha_free);
    expect_close("alpha_rule", e.alpha_rule);
    expect_close("value_drain", e.value_drain);
    expect_close("resid_norm_ratio", e.resid_norm_ratio);
    EXPECT_GT(e.rule_queries, 0);
    // The first record (step 0) is the untrained model: it must differ from the last.
    EXPECT_NE(recs.front().at("emergence").at("value_drain"), last.at("value_drain")) << variant;
    fs::remove_all(cfg.train.out_dir);
  }
}

TEST(TrainTask, ResumeKeepsTheProbeRecord) {
  TrainConfig cfg = tiny_run("resume", 1, 1, 16, 2, 6);
  cfg.train.eval_batches = 1;
  cfg.train.probe_every = 3;
  cfg.train.probe_sequences = 2;
  cfg.train.checkpoint_every = 3;
  train(cfg);
  cfg.train.steps = 9;
  train(cfg);
  std::ifstream in(cfg.train.out_dir + "/probes.json");
  const nlohmann::json doc = nlohmann::json::parse(in);
  std::vector<int64_t> steps;
  for (const auto& r : doc.at("records")) steps.push_back(r.at("step").get<int64_t>());
  EXPECT_EQ(steps, (std::vector<int64_t>{0, 3, 6, 9}));
  fs::remove_all(cfg.train.out_dir);
}

TEST(TrainConfigParse, TaskAndLeverKeys) {
  const TrainConfig c = parse_train_config(
      R"({"model": {"dim": 16, "n_layers": 1, "n_heads": 1},
          "data": {"task": "assoc-recall", "vocab": 30, "keys": 4},
          "train": {"out_dir": "x", "optimizer": "sgd", "momentum": 0.8, "lr_schedule": "constant", "probe_every": 7}})",
      "cfg");
  EXPECT_EQ(c.data.task, "assoc-recall");
  EXPECT_EQ(c.train.optimizer, "sgd");
  EXPECT_EQ(c.train.probe_every, 7);
  const TrainConfig back = parse_train_config(train_config_to_json(c), "back");
  EXPECT_EQ(back.data.keys, 4);
  EXPECT_EQ(back.train.lr_schedule, "constant");
  auto err = [](const std::string& text) {
    try {
      parse_train_config(text, "cfg");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(err(R"({"model": {}, "train": {"out_dir": "x"}})").find("data.task"), std::string::npos);
  EXPECT_NE(err(R"({"model": {}, "data": {"task": "bigram-backcopy"}, "train": {"out_dir": "x", "optimizer": "lion"}})")
                .find("train.optimizer"),
            std::string::npos);
  EXPECT_NE(err(R"({"model": {}, "data": {"task": "bigram-backcopy"}, "train": {"out_dir": "x", "train_text": "a"}})")
                .find("exclude"),
            std::string::npos);
}

}  // namespace

namespace {

// The recipe of models/bb-*: one layer, one head, d 64, Bigram-Backcopy over 64
// tokens with 3 triggers, sequences of 64, 32 per step, constant lr.
TrainConfig backcopy_run(const std::string& name, const char* optimizer, float lr, int64_t steps) {
  TrainConfig cfg;
  cfg.model.dim = 64;
  cfg.model.n_layers = 1;
  cfg.model.n_heads = 1;
  cfg.model.n_kv_heads = 1;
  cfg.model.seq_len = 64;
  cfg.model.init_std = 0.1f;
  cfg.data.task = "bigram-backcopy";
  cfg.data.vocab = 64;
  cfg.data.triggers = 3;
  cfg.data.chain_seed = 1;
  cfg.train.batch_size = 32;
  cfg.train.steps = steps;
  cfg.train.lr = lr;
  cfg.train.warmup_steps = 100;
  cfg.train.lr_schedule = "constant";
  cfg.train.weight_decay = 0.f;
  cfg.train.optimizer = optimizer;
  cfg.train.eval_every = 0;
  cfg.train.eval_batches = 0;
  cfg.train.seed = 1;
  cfg.train.threads = 1;
  cfg.train.out_dir = fresh_dir(name);
  return cfg;
}

}  // namespace

// The sink forms by itself: after 1.6M tokens of AdamW the free (non-trigger)
// queries put most of their attention on BOS while trigger queries look away
// from it; the same run under SGD with momentum learns the task without a sink.
TEST(TrainTask, SinkFormsUnderAdamWAndNotUnderSgd) {
#ifdef SINKLAB_SANITIZED
  GTEST_SKIP() << "two 800-step training runs (~40 s optimised); the sanitizers check the same code in the short runs";
#endif
  struct Outcome {
    double alpha_free, alpha_rule, loss;
  };
  auto run = [](const char* optimizer, float lr) {
    const TrainConfig cfg = backcopy_run(std::string("emerge_") + optimizer, optimizer, lr, 800);
    const TrainResult r = train(cfg);
    const SinkEmergence e = task_sink_emergence(Model::load(cfg.train.out_dir), cfg.data, 8);
    fs::remove_all(cfg.train.out_dir);
    return Outcome{e.alpha_free[0], e.alpha_rule[0], r.losses.back()};
  };
  const Outcome adam = run("adamw", 2e-2f);
  EXPECT_GT(adam.alpha_free, 0.5) << "no sink formed on free queries";
  EXPECT_LT(adam.alpha_rule, 0.1) << "trigger queries must attend elsewhere (the token to copy)";
  const Outcome sgd = run("sgd", 5e-2f);
  EXPECT_LT(sgd.alpha_free, 0.2) << "SGD is the control: it should not grow the sink";
  EXPECT_LT(sgd.loss, 2.5) << "the SGD control must still learn the task (ln 64 = 4.16)";
}

// Softmax-off-by-one: the checkpoint holds sink logits of exactly 0 after training.
TEST(TrainTask, SoftmaxOffByOneKeepsItsSinkLogitsAtZero) {
  TrainConfig cfg = tiny_run("offbyone", 2, 2, 16, 4, 5);
  cfg.model.variant = AttnVariant::OffByOne;
  cfg.train.lr = 1e-2f;
  const TrainResult r = train(cfg);
  EXPECT_LT(r.losses.back(), r.losses.front());
  const auto model = Model::load(cfg.train.out_dir);
  EXPECT_TRUE(model->config().sink_logits);
  EXPECT_EQ(model->config().variant, "softmax-off-by-one");
  for (int l = 0; l < 2; ++l)
    for (float s : model->sink_logits(l)) EXPECT_EQ(s, 0.f) << "layer " << l;
  fs::remove_all(cfg.train.out_dir);
}

// fixed_first_token: <|endoftext|> opens every training window and becomes the checkpoint's BOS.
TEST(TrainTask, FixedFirstTokenBecomesTheBos) {
  const std::string dir = fresh_dir("fixed_first");
  fs::create_directories(dir);
  std::string text;
  for (int i = 0; i < 3000; ++i) text += (i % 7 == 0 ? "the king said. " : i % 3 ? "a garden of light " : "she walked ");
  std::ofstream(dir + "/text.txt") << text;
  TrainConfig cfg;
  cfg.model.dim = 16;
  cfg.model.n_layers = 1;
  cfg.model.n_heads = 2;
  cfg.model.n_kv_heads = 2;
  cfg.model.seq_len = 16;
  cfg.train.train_text = dir + "/text.txt";
  cfg.train.tokenizer_vocab = 300;
  cfg.train.fixed_first_token = true;
  cfg.train.batch_size = 2;
  cfg.train.steps = 2;
  cfg.train.eval_batches = 1;
  cfg.train.probe_every = 1;
  cfg.train.probe_sequences = 2;
  cfg.train.out_dir = dir + "/run";
  cfg.train.threads = 1;
  train(cfg);
  const auto model = Model::load(cfg.train.out_dir);
  ASSERT_NE(model->tokenizer(), nullptr);
  const int32_t eot = model->tokenizer()->special_token_id("<|endoftext|>");
  ASSERT_GE(eot, 0);
  EXPECT_EQ(model->tokenizer()->bos_id(), eot);
  EXPECT_EQ(model->tokenizer()->encode("the king", true).front(), eot);
  // A text run's probes: every query free, the windows led by the fixed token.
  std::ifstream in(cfg.train.out_dir + "/probes.json");
  const nlohmann::json doc = nlohmann::json::parse(in);
  EXPECT_EQ(doc.at("probe").at("first_token").get<int32_t>(), eot);
  EXPECT_EQ(doc.at("records").back().at("emergence").at("rule_queries").get<int64_t>(), 0);
  fs::remove_all(dir);
}

TEST(TrainConfigParse, DeeplyNestedConfigsAreOneClearError) {
  std::string deep;
  for (int i = 0; i < 70000; ++i) deep += "{\"a\":";
  deep += "1" + std::string(70000, '}');
  for (const std::string& text : {"{\"model\": " + deep + "}", "{\"data\": " + std::string(1000000, '[') + "}"}) {
    try {
      parse_train_config(text, "cfg.json");
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cfg.json: JSON nested deeper than 256 levels"), std::string::npos)
          << e.what();
    }
  }
}

// A diverging run (lr 1e30) stops with an error at the first non-finite loss and
// leaves only finite checkpoints behind.
TEST(TrainTask, DivergenceStopsWithAnErrorAndKeepsTheLastFiniteCheckpoint) {
  TrainConfig cfg = tiny_run("diverge", 1, 1, 16, 2, 50);
  cfg.train.lr = 1e30f;
  cfg.train.grad_clip = 0.f;
  cfg.train.checkpoint_every = 1;
  try {
    train(cfg);
    ADD_FAILURE() << "a run at lr 1e30 finished without an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("non-finite"), std::string::npos) << e.what();
  }
  ASSERT_TRUE(fs::exists(cfg.train.out_dir + "/model.safetensors")) << "step 1 was finite and checkpointed";
  const TensorFile f = load_safetensors(cfg.train.out_dir + "/model.safetensors");
  for (const auto& [name, e] : f.tensors()) {
    std::vector<float> w(size_t(e.numel()));
    dequantize(e, w.data());
    for (float x : w) ASSERT_TRUE(std::isfinite(x)) << name;
  }
  fs::remove_all(cfg.train.out_dir);
}

namespace {

TrainConfig checkpoint_run(const std::string& dir) {
  TrainConfig cfg = tiny_run("unused", 2, 2, 16, 2, 6);
  cfg.train.checkpoint_every = 2;
  cfg.train.out_dir = dir;
  return cfg;
}

std::vector<float> weights_of(const std::string& dir) {
  const TensorFile f = load_safetensors(dir + "/model.safetensors");
  std::vector<float> all;
  for (const std::string& name : f.names()) {
    const TensorEntry& e = f.tensor(name);
    std::vector<float> w(size_t(e.numel()));
    dequantize(e, w.data());
    all.insert(all.end(), w.begin(), w.end());
  }
  return all;
}

}  // namespace

// A kill after any file of a checkpoint's save (simulated by the test hook)
// leaves the previous set in charge: resuming gives bit-exactly the weights of
// an uninterrupted run, and nothing the interrupted save wrote is left behind.
TEST(TrainCheckpoint, AKillAtAnyFileOfASaveResumesBitExact) {
  const std::string ref_dir = fresh_dir("ckpt_ref");
  train(checkpoint_run(ref_dir));
  const std::vector<float> want = weights_of(ref_dir);
  for (int k = 0; k <= 9; ++k) {
    const std::string dir = fresh_dir("ckpt_kill_" + std::to_string(k));
    ::setenv("SINKLAB_TEST_CHECKPOINT_FAIL", ("4:" + std::to_string(k)).c_str(), 1);
    EXPECT_THROW(train(checkpoint_run(dir)), Error) << "k = " << k;
    ::unsetenv("SINKLAB_TEST_CHECKPOINT_FAIL");
    train(checkpoint_run(dir));
    EXPECT_EQ(weights_of(dir), want) << "resume after a kill at file " << k << " of step 4's save";
    int leftovers = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir))
      leftovers += e.path().extension() == ".tmp";
    EXPECT_EQ(leftovers, 0) << k;
    EXPECT_EQ(std::distance(fs::directory_iterator(dir + "/checkpoints"), fs::directory_iterator()), 1) << k;
    fs::remove_all(dir);
  }
  fs::remove_all(ref_dir);
}

TEST(TrainCheckpoint, ADamagedSetIsRefused) {
  const std::string dir = fresh_dir("ckpt_damaged");
  TrainConfig cfg = checkpoint_run(dir);
  cfg.train.steps = 4;
  train(cfg);
  const std::string victim = dir + "/checkpoints/step-00000004/optimizer.safetensors";
  ASSERT_TRUE(fs::exists(victim));
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-3, std::ios::end);
    f.put('\x7f');
  }
  cfg.train.steps = 6;
  try {
    train(cfg);
    ADD_FAILURE() << "resumed from a damaged checkpoint";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not match manifest.json"), std::string::npos) << e.what();
  }
  fs::remove(victim);
  try {
    train(cfg);
    ADD_FAILURE() << "resumed from an incomplete checkpoint";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is missing"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(TrainConfigParse, FractionalOrHugeValuesAreErrors) {
  auto err = [](const std::string& model, const std::string& train = "") {
    try {
      parse_train_config(R"({"model": {)" + model + R"(}, "data": {"task": "bigram-backcopy"}, "train": {"out_dir": "x")" +
                             train + "}}",
                         "cfg");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(err(R"("n_layers": 5.5)").find("'n_layers' must be an integer"), std::string::npos);
  EXPECT_NE(err(R"("n_layers": 1000000000)").find("n_layers <= 1024"), std::string::npos);
  EXPECT_NE(err(R"("n_layers": 1e30)").find("must be an integer"), std::string::npos);
  EXPECT_NE(err(R"("dim": 99999999999999999999)").find("must be an integer"), std::string::npos);
  EXPECT_NE(err(R"("dim": 9223372036854775807)").find("dim <= 65536"), std::string::npos);
  EXPECT_NE(err(R"("rope": 1)").find("must be true or false"), std::string::npos);
  EXPECT_NE(err("\"dim\": 64", R"(, "batch_size": 100000000)").find("batch_size"), std::string::npos);
  EXPECT_NE(err("\"dim\": 64", R"(, "lr": 1e30)").find("train.lr"), std::string::npos);
}
