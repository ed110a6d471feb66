// Token streams and the deterministic choice of training windows.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "checkpoint.h"
#include "sinklab/train.h"

namespace sinklab {

namespace {

// FNV-1a of the file's bytes; throws when they are not valid UTF-8. Memory
// stays at one block whatever the size.
uint64_t checked_text_hash(const std::string& path) {
  uint64_t key = fnv1a64("");
  Utf8StreamCheck utf8;
  auto check_utf8 = [&](int64_t bad) {
    check(bad < 0, path + ": the text is not valid UTF-8 (at byte " + std::to_string(bad) + ")");
  };
  read_file_blocks(path, "training text", size_t(1) << 20, [&](std::string_view block) {
    key = fnv1a64(block, key);
    check_utf8(utf8.feed(block));
    return true;
  });
  check_utf8(utf8.finish());
  return key;
}

// Encodes `path`, reusing a cache file keyed by the text and tokenizer. The
// text is read and encoded in pieces (ChunkedEncoder), so memory follows the
// token count, not the text's size.
std::vector<int32_t> encode_cached(const std::string& path, const Tokenizer& tok, const std::string& cache_dir) {
  uint64_t key = checked_text_hash(path);
  for (int32_t i = 0; i < tok.vocab_size(); ++i) key = fnv1a64(tok.token_text(i), key);
  std::ostringstream name;
  name << cache_dir << "/tokens-" << std::hex << key << ".bin";
  std::vector<int32_t> ids;
  if (std::ifstream in{name.str(), std::ios::binary}) {
    in.seekg(0, std::ios::end);
    const auto bytes = int64_t(in.tellg());
    if (bytes > 0 && bytes % 4 == 0) {
      ids.resize(size_t(bytes / 4));
      in.seekg(0);
      in.read(reinterpret_cast<char*>(ids.data()), bytes);
      if (in) return ids;
    }
  }
  TextFileEncoding how;
  how.require_utf8 = false;  // checked above
  how.what = "training text";
  ids = encode_text_file(tok, path, how).ids;
  std::filesystem::create_directories(cache_dir);
  // Ranks of one MPI run may write the same cache at once: each writes its own
  // temporary file, and the renames replace one identical file with another.
  const std::string tmp = name.str() + "." + std::to_string(::getpid()) + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(reinterpret_cast<const char*>(ids.data()), std::streamsize(ids.size() * 4));
    check(bool(out), tmp + ": cannot write the token cache");
  }
  std::filesystem::rename(tmp, name.str());
  return ids;
}

}  // namespace

TokenData load_token_data(const TrainOptions& opts, const Tokenizer& tokenizer) {
  TokenData d;
  d.train = encode_cached(opts.train_text, tokenizer, opts.out_dir);
  if (!opts.valid_text.empty()) {
    d.valid = encode_cached(opts.valid_text, tokenizer, opts.out_dir);
  } else {
    const size_t cut = d.train.size() - d.train.size() / 50;
    d.valid.assign(d.train.begin() + int64_t(cut), d.train.end());
    d.train.resize(cut);
  }
  return d;
}

void sample_batch(std::span<const int32_t> stream, uint64_t seed, int64_t step, int64_t micro, int64_t B,
                  int64_t T, int32_t sink_token, int32_t* inputs, int32_t* targets) {
  const int64_t n = int64_t(stream.size());
  check(n > T + 1, "training text: " + std::to_string(n) + " tokens is too short for windows of " +
                       std::to_string(T + 1));
  const int64_t span = n - T - 1;
  for (int64_t b = 0; b < B; ++b) {
    uint64_t h = splitmix64(seed);
    h = splitmix64(h ^ uint64_t(step));
    h = splitmix64(h ^ uint64_t(micro) * 0x100000001b3ull);
    h = splitmix64(h ^ uint64_t(b) * 0xc2b2ae3d27d4eb4full);
    const int64_t off = int64_t(h % uint64_t(span));
    int32_t* in = inputs + b * T;
    int32_t* tg = targets + b * T;
    if (sink_token >= 0) {
      in[0] = sink_token;
      for (int64_t t = 1; t < T; ++t) in[t] = stream[size_t(off + t - 1)];
      for (int64_t t = 0; t < T; ++t) tg[t] = stream[size_t(off + t)];
    } else {
      for (int64_t t = 0; t < T; ++t) {
        in[t] = stream[size_t(off + t)];
        tg[t] = stream[size_t(off + t + 1)];
      }
    }
  }
}

void sample_task_batch(const SyntheticTask& task, uint64_t seed, int64_t step, int64_t micro, int64_t B, int64_t T,
                       int32_t sink_token, int32_t* inputs, int32_t* targets) {
  const bool rule_only = task.config().loss == "rule";
  const int64_t lead = sink_token >= 0 ? 1 : 0;  // the sink token takes position 0
  for (int64_t b = 0; b < B; ++b) {
    const TaskSequence s = task.generate(task_sequence_seed(seed, uint64_t(step), uint64_t(micro), uint64_t(b)),
                                         T + 1 - lead);
    int32_t* in = inputs + b * T;
    int32_t* tg = targets + b * T;
    if (lead) {
      in[0] = sink_token;
      tg[0] = -1;  // BOS follows the sink token: given, not predicted
    }
    for (int64_t t = 0; t + lead < T; ++t) {
      in[t + lead] = s.tokens[size_t(t)];
      const bool scored = !rule_only || s.kind[size_t(t)] == QueryKind::Rule;
      tg[t + lead] = scored ? s.tokens[size_t(t + 1)] : -1;
    }
  }
}

std::vector<TaskSequence> task_probe_sequences(const SyntheticTask& task, int64_t count, int64_t length,
                                               int32_t sink_token) {
  check(count >= 1 && length >= 2, "task probes: need at least one sequence of at least 2 tokens");
  std::vector<TaskSequence> out;
  const int64_t lead = sink_token >= 0 ? 1 : 0;
  for (int64_t i = 0; i < count; ++i) {
    TaskSequence s = task.generate(task_sequence_seed(0x9b0be5ull, uint64_t(i)), length - lead);
    if (lead) {
      s.tokens.insert(s.tokens.begin(), sink_token);
      s.kind.insert(s.kind.begin(), QueryKind::Free);
    }
    out.push_back(std::move(s));
  }
  return out;
}

void eval_batch(std::span<const int32_t> stream, int64_t index, int64_t B, int64_t T, int32_t sink_token,
                int32_t* inputs, int32_t* targets) {
  const int64_t n = int64_t(stream.size());
  const int64_t windows = (n - 1) / T;
  check(windows > 0, "validation text: too short for one window of " + std::to_string(T + 1) + " tokens");
  for (int64_t b = 0; b < B; ++b) {
    const int64_t off = ((index * B + b) % windows) * T;
    int32_t* in = inputs + b * T;
    int32_t* tg = targets + b * T;
    for (int64_t t = 0; t < T; ++t) {
      if (sink_token >= 0) {
        in[t] = t == 0 ? sink_token : stream[size_t(off + t - 1)];
        tg[t] = stream[size_t(off + t)];
      } else {
        in[t] = stream[size_t(off + t)];
        tg[t] = stream[size_t(off + t + 1)];
      }
    }
  }
}

}  // namespace sinklab
