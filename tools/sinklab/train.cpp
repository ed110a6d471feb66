// `sinklab train --config FILE.json`: trains (or resumes) a small decoder with
// one of the attention variants; under mpirun the ranks share each step.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "commands.h"
#include "input_files.h"
#include "sinklab/train.h"

namespace sinklab::cli {

namespace {

struct TrainFlags {
  std::string config;
  std::string out;
  int64_t steps = 0;
  int threads = 0;
  bool quiet = false;
  bool print_config = false;
  int64_t probe_every = -1;
  bool force = false;
};

// A run folder is new, empty, or holds this trainer's checkpoint (resume);
// anything else (a model folder, say) is only written with --force.
void check_out_dir(const std::string& dir, bool force) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return;
  check(fs::is_directory(dir, ec), "train: output '" + dir + "' exists and is not a folder");
  if (fs::exists(fs::path(dir) / "checkpoint.json", ec) || fs::exists(fs::path(dir) / "trainer_state.json", ec) ||
      fs::is_empty(dir, ec))
    return;
  check(force, "train: output folder '" + dir +
                   "' holds files but no checkpoint of `sinklab train` to resume; choose a new folder or pass "
                   "--force to write into it (its model files are replaced)");
}

void print_progress(const TrainEvent& ev, bool quiet) {
  if (quiet && !ev.is_eval && ev.step != ev.steps) return;
  const double eta = ev.step > 0 ? ev.seconds / double(ev.step) * double(ev.steps - ev.step) : 0;
  const int width = 24, filled = int(width * double(ev.step) / double(std::max<int64_t>(ev.steps, 1)));
  std::string bar(size_t(filled), '#');
  bar.resize(size_t(width), '.');
  std::fprintf(stderr, "[%s] step %lld/%lld | loss %.4f", bar.c_str(), (long long)ev.step, (long long)ev.steps,
               ev.train_loss);
  if (ev.is_eval) std::fprintf(stderr, " | eval %.4f", ev.eval_loss);
  std::fprintf(stderr, " | lr %.2e | |g| %.2f | %.0f tok/s | %.0fs, eta %.0fs\n", ev.lr, ev.grad_norm,
               ev.tokens_per_s, ev.seconds, eta);
}

}  // namespace

Command train_command() {
  auto f = std::make_shared<TrainFlags>();
  Command c;
  c.add = [f](CLI::App& app) {
    CLI::App* sub = app.add_subcommand(
        "train",
        "Train (or resume) a small decoder from a JSON config; checkpoints are safetensors + config.json + "
        "tokenizer.json that every sinklab command loads. Run under `mpirun -np N` for data parallelism.");
    sub->add_option("--config", f->config, "Training config (JSON: {\"model\": {...}, \"train\": {...}}; see docs/TRAINING.md)")
        ->required()
        ->check(CLI::ExistingFile);
    sub->add_option("-o,--out", f->out, "Output folder (overrides train.out_dir)");
    sub->add_option("--steps", f->steps, "Number of steps (overrides train.steps)")->check(CLI::PositiveNumber);
    add_threads_flag(*sub, f->threads, ", overrides train.threads");
    sub->add_option("--probe-every", f->probe_every,
                    "Probe the sink every N steps (overrides train.probe_every; 0 = off): attention on token 0 "
                    "by query kind, value drain and massive ratio per layer, in OUT/probes.json and OUT/probes.html")
        ->check(CLI::NonNegativeNumber);
    sub->add_flag("-q,--quiet", f->quiet, "Print only evaluations and the last step");
    sub->add_flag("--force", f->force,
                  "Write into an output folder that holds files but no checkpoint to resume (a model folder)");
    sub->add_flag("--print-config", f->print_config, "Print the resolved config and exit");
    return sub;
  };
  c.run = [f]() {
    check_input_path(f->config, "--config: file");
    TrainConfig cfg = load_train_config(f->config);
    if (!f->out.empty()) cfg.train.out_dir = f->out;
    if (f->steps > 0) cfg.train.steps = f->steps;
    if (f->threads > 0) cfg.train.threads = f->threads;
    if (f->probe_every >= 0) cfg.train.probe_every = f->probe_every;
    if (f->print_config) {
      std::fputs(train_config_to_json(cfg).c_str(), stdout);
      return 0;
    }
    check_out_dir(cfg.train.out_dir, f->force);
    for (const std::string* path : {&cfg.train.train_text, &cfg.train.valid_text, &cfg.train.tokenizer})
      if (!path->empty()) check_input_path(*path, f->config + ": file");
    const World world = world_init();
    if (world.rank == 0)
      std::fprintf(stderr, "sinklab train: %s variant, %lld steps of %lld x %lld x %lld tokens, %d rank(s) -> %s\n",
                   attn_variant_name(cfg.model.variant), (long long)cfg.train.steps, (long long)cfg.train.grad_accum,
                   (long long)cfg.train.batch_size, (long long)cfg.model.seq_len, world.size,
                   cfg.train.out_dir.c_str());
    const bool quiet = f->quiet;
    const TrainResult r = train(cfg, [quiet](const TrainEvent& ev) { print_progress(ev, quiet); });
    if (world.rank == 0)
      std::printf("trained %lld steps; final eval loss %.4f; %.0f tokens/s; checkpoint in %s\n",
                  (long long)r.steps_done, r.final_eval_loss, r.tokens_per_s, cfg.train.out_dir.c_str());
    world_finalize();
    return 0;
  };
  return c;
}

}  // namespace sinklab::cli
