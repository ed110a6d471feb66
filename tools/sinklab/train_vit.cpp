// `sinklab train-vit`: trains a small DINOv2-style ViT (optionally with
// register tokens) on generated shape images and writes a Hugging Face
// dinov2 folder that `sinklab inspect -m OUT --image OUT/sample-N.png` reads.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "bench_harness.h"
#include "commands.h"
#include "output_guard.h"
#include "sinklab/vision.h"

namespace sinklab::cli {

namespace {

struct TrainVitFlags {
  VitTrainConfig config;
  int steps = 2000, log_every = 100, samples = 4, threads = 0;
  std::string out;
  OutputGuard guard;
};

// The generated image `seed` as an 8-bit PNG.
void write_sample(const std::string& path, int size, uint64_t seed) {
  const ShapeImage s = make_shape_image(size, seed);
  Image img;
  img.width = img.height = size;
  img.rgb.resize(size_t(size) * size_t(size) * 3);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x)
      for (int c = 0; c < 3; ++c) {
        const float v = (s.pixels[(size_t(c) * size_t(size) + size_t(y)) * size_t(size) + size_t(x)] + 1.f) * 127.5f;
        img.rgb[(size_t(y) * size_t(size) + size_t(x)) * 3 + size_t(c)] = uint8_t(std::clamp(std::lround(v), 0L, 255L));
      }
  const std::vector<uint8_t> png = encode_png(img);
  write_output_text(path, std::string(png.begin(), png.end()), "--out");
}

int run(TrainVitFlags& f) {
  std::vector<std::string> files = {"model.safetensors", "config.json", "preprocessor_config.json", "train_log.json"};
  for (int i = 0; i < f.samples; ++i) files.push_back("sample-" + std::to_string(i) + ".png");
  f.guard.check_folder_files(f.out, files, "--out");
  bench::set_threads(f.threads);
  VitTrainer trainer(f.config);
  nlohmann::json log = nlohmann::json::array();
  const auto start = std::chrono::steady_clock::now();
  double loss = 0, acc = 0;
  int seen = 0;
  for (int s = 0; s < f.steps; ++s) {
    const VitStepResult r = trainer.step(s);
    loss += r.loss, acc += r.accuracy, ++seen;
    if ((s + 1) % f.log_every == 0 || s + 1 == f.steps) {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("step %6d  loss %.4f  accuracy %.3f  (%.0f s)\n", s + 1, loss / seen, acc / seen, secs);
      std::fflush(stdout);
      log.push_back({{"step", s + 1}, {"loss", loss / seen}, {"accuracy", acc / seen}, {"seconds", secs}});
      loss = acc = 0, seen = 0;
    }
  }
  std::filesystem::create_directories(f.out);
  trainer.save(f.out);
  const VitTrainConfig& c = f.config;
  nlohmann::json doc = {{"config", {{"image_size", c.image_size}, {"patch_size", c.patch_size}, {"dim", c.dim},
                                    {"layers", c.layers}, {"heads", c.heads}, {"hidden", c.hidden},
                                    {"registers", c.registers}, {"batch", c.batch}, {"lr", c.lr},
                                    {"weight_decay", c.weight_decay}, {"seed", c.seed}, {"steps", f.steps}}},
                        {"log", log}};
  write_output_text((std::filesystem::path(f.out) / "train_log.json").string(), doc.dump(1) + "\n", "--out");
  for (int i = 0; i < f.samples; ++i)
    write_sample((std::filesystem::path(f.out) / ("sample-" + std::to_string(i) + ".png")).string(), c.image_size,
                 uint64_t(1) << 40 | uint64_t(i));
  std::printf("wrote:      %s (dinov2%s checkpoint, config.json, preprocessor_config.json, train_log.json, %d samples)\n",
              f.out.c_str(), c.registers > 0 ? "_with_registers" : "", f.samples);
  return 0;
}

}  // namespace

Command train_vit_command() {
  auto f = std::make_shared<TrainVitFlags>();
  Command c;
  c.add = [f](CLI::App& app) {
    CLI::App* sub = app.add_subcommand(
        "train-vit", "Train a small ViT (DINOv2-style, optional register tokens) to classify generated shapes "
                     "(disk, square, triangle, cross; random place, size, colour, clutter); write a dinov2 folder");
    sub->add_option("--out", f->out, "Output folder (model.safetensors, config.json, samples)")->required();
    sub->add_option("--steps", f->steps, "AdamW steps (default 2000)")->check(CLI::Range(1, 10000000));
    sub->add_option("--registers", f->config.registers, "Register tokens after CLS (default 0)")->check(CLI::Range(0, 64));
    sub->add_option("--dim", f->config.dim, "Width (default 64)")->check(CLI::Range(8, 1024));
    sub->add_option("--layers", f->config.layers, "Blocks (default 4)")->check(CLI::Range(1, 48));
    sub->add_option("--heads", f->config.heads, "Attention heads (default 4)")->check(CLI::Range(1, 64));
    sub->add_option("--hidden", f->config.hidden, "MLP width (default 256)")->check(CLI::Range(8, 8192));
    sub->add_option("--image-size", f->config.image_size, "Image side in pixels (default 32)")->check(CLI::Range(8, 512));
    sub->add_option("--patch-size", f->config.patch_size, "Patch side in pixels (default 4)")->check(CLI::Range(1, 64));
    sub->add_option("--batch", f->config.batch, "Images per step (default 32)")->check(CLI::Range(1, 4096));
    sub->add_option("--lr", f->config.lr, "AdamW learning rate (default 1e-3)")->check(CLI::Range(1e-7, 1.0));
    sub->add_option("--weight-decay", f->config.weight_decay, "AdamW weight decay on matrices (default 0.05)")
        ->check(CLI::Range(0.0, 1.0));
    sub->add_option("--seed", f->config.seed, "Seed of the weights and the data (default 1)");
    sub->add_option("--log-every", f->log_every, "Print mean loss and accuracy every N steps (default 100)")
        ->check(CLI::Range(1, 1000000));
    sub->add_option("--samples", f->samples, "Sample images written as sample-N.png (default 4)")->check(CLI::Range(0, 100));
    add_threads_flag(*sub, f->threads);
    f->guard.add_force_flag(*sub);
    return sub;
  };
  c.run = [f]() -> int { return run(*f); };
  return c;
}

}  // namespace sinklab::cli
