// The tokens an attention-driven cache keeps outside its window, on a task
// model's stream (docs/results/adaptive-sinks.md, "Which tokens"). Not part of
// the build; from the project root, after building build/ (one command line):
//   c++ -O1 -std=c++20 -fopenmp -Iinclude docs/results/adaptive-sinks/kept_tokens.cpp -o /tmp/kept_tokens
//     build/src/libsinklab_tasks.a build/src/libsinklab_model.a build/src/libsinklab_cache.a
//     build/src/libsinklab_attention.a build/src/libsinklab_core.a
//     /usr/lib/gcc/x86_64-linux-gnu/12/libgomp.so /usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so -lpthread
//   /tmp/kept_tokens models/bb-vanilla-3l adaptive:sink=4,budget=16
// The stream is the one of `sinklab ppl --task-stream 4096` (seed 1). After token 31
// and every 1024th it prints the kept tokens and, per layer, the attention the
// last query paid to each (float64 oracle, through the attn_probs tap; one
// query per step, heads summed).
#include <cstdio>
#include <vector>
#include "sinklab/model.h"
#include "sinklab/tasks.h"
using namespace sinklab;
int main(int argc, char** argv) {
  if (argc < 3) return 2;
  auto model = Model::load(argv[1]);
  const TaskConfig task = load_task_config_beside(model->path());
  auto gen = make_task(task, "t");
  TaskSequence s = gen->generate(task_sequence_seed(1, 0x57ea), 4096);
  SessionOptions o;
  o.cache = argv[2];
  Session sess(model, o);
  const int layers = int(model->config().n_layers), heads = int(model->config().n_heads);
  std::vector<std::vector<float>> last(static_cast<size_t>(layers));  // per layer: [heads, slots] of the last step
  sess.taps().add("blk.*.attn_probs", [&](const TapEvent& e) {
    last[size_t(e.layer)].assign(e.data, e.data + e.rows * e.cols);
  });
  std::printf("first tokens:");
  for (int i = 0; i < 12; ++i) std::printf(" %d", s.tokens[size_t(i)]);
  std::printf("\n");
  for (size_t i = 0; i < s.tokens.size(); ++i) {
    sess.feed(std::span<const int32_t>(&s.tokens[i], 1));
    if (i == 31 || i % 1024 == 1023) {
      auto alive = sess.cache().survivors();
      std::printf("after %zu, sinks:", i);
      for (size_t k = 0; k < 4 && k < alive.size(); ++k) std::printf(" %lld(id %d)", (long long)alive[k].index, s.tokens[size_t(alive[k].index)]);
      std::printf("\n");
      for (int l = 0; l < layers; ++l) {
        std::printf("  layer %d attention on them:", l);
        const int64_t cols = int64_t(last[size_t(l)].size()) / heads;
        for (size_t k = 0; k < 4 && k < alive.size(); ++k) {
          double m = 0;
          for (int h = 0; h < heads; ++h) m += last[size_t(l)][size_t(h * cols + sess.cache().slot_of(alive[k].index))];
          std::printf(" %.3f", m);
        }
        std::printf("\n");
      }
    }
  }
}
