// `sinklab train-tokenizer`: trains a byte-level BPE tokenizer on a text file
// and writes it as a Hugging Face tokenizer.json.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_harness.h"
#include "commands.h"
#include "input_files.h"
#include "output_guard.h"
#include "sinklab/tokenizer.h"

namespace sinklab::cli {

namespace {

struct TrainTokenizerFlags {
  int threads = 0;
  std::string corpus;
  std::string output;
  int32_t vocab = 4096;
  std::vector<std::string> specials;
  std::string pattern = "gpt2";
  int64_t min_count = 2;
  OutputGuard guard;
};

PretokenizerPattern pattern_from_name(const std::string& name) {
  if (name == "gpt2") return PretokenizerPattern::Gpt2;
  if (name == "llama3") return PretokenizerPattern::Llama3;
  if (name == "o200k") return PretokenizerPattern::O200k;
  return PretokenizerPattern::Qwen2;
}

}  // namespace

Command train_tokenizer_command() {
  auto flags = std::make_shared<TrainTokenizerFlags>();
  Command cmd;
  cmd.add = [flags](CLI::App& app) {
    CLI::App* sub = app.add_subcommand(
        "train-tokenizer", "Train a byte-level BPE tokenizer on a text file (writes tokenizer.json)");
    sub->add_option("-f,--file", flags->corpus, "Training text (any bytes; UTF-8 expected)")->required();
    sub->add_option("-o,--output", flags->output, "tokenizer.json to write")->required();
    sub->add_option("--vocab", flags->vocab, "Vocabulary size: special tokens + 256 byte symbols + merges")
        ->capture_default_str();
    sub->add_option("--special", flags->specials,
                    "Special token (repeatable); ids 0.. in the order given, e.g. --special '<|endoftext|>'");
    sub->add_option("--pattern", flags->pattern, "Word splitting: gpt2, llama3, qwen2 or o200k")
        ->check(CLI::IsMember({"gpt2", "llama3", "qwen2", "o200k"}))
        ->capture_default_str();
    sub->add_option("--min-count", flags->min_count, "Stop merging when the best pair occurs fewer times")
        ->capture_default_str();
    flags->guard.add_force_flag(*sub);
    add_threads_flag(*sub, flags->threads);
    return sub;
  };
  cmd.run = [flags]() {
    bench::set_threads(flags->threads);
    flags->guard.input(flags->corpus);
    flags->guard.check_file(flags->output, "-o/--output");
    check_input_path(flags->corpus, "train-tokenizer: corpus");
    const auto corpus_bytes = std::filesystem::file_size(flags->corpus);
    BpeTrainOptions opts;
    opts.vocab_size = flags->vocab;
    opts.special_tokens = flags->specials;
    opts.pattern = pattern_from_name(flags->pattern);
    opts.min_pair_count = flags->min_count;
    const auto start = std::chrono::steady_clock::now();
    const std::string json = train_bpe_tokenizer_json_from_file(flags->corpus, opts);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // Loading it back checks the file before it replaces anything.
    const auto tokenizer = tokenizer_from_json_string(json, flags->output);
    const size_t merges = nlohmann::json::parse(json)["model"]["merges"].size();
    write_output_text(flags->output, json, "-o/--output");
    std::printf("wrote %s: vocab %d (%zu special, 256 bytes, %zu merges), %zu corpus bytes, %.2f s\n",
                flags->output.c_str(), tokenizer->vocab_size(), flags->specials.size(), merges, size_t(corpus_bytes),
                seconds);
    if (tokenizer->vocab_size() < flags->vocab)
      std::printf("note: fewer tokens than --vocab %d: no pair occurs %lld times or more\n", flags->vocab,
                  static_cast<long long>(flags->min_count));
    return 0;
  };
  return cmd;
}

}  // namespace sinklab::cli
