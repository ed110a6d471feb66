// Model runtime: an immutable Model (config + weights + tokenizer) shared by any
// number of Sessions, each owning its KV cache, scratch buffers and taps.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sinklab/attention.h"
#include "sinklab/cache.h"
#include "sinklab/core.h"
#include "sinklab/tokenizer.h"

namespace sinklab {

struct MoeConfig {
  int n_experts = 0;       // 0 = dense FFN
  int n_used = 0;          // top-k
  int64_t expert_hidden = 0;
  bool norm_topk = false;  // renormalise the top-k router probabilities (= softmax over the k selected logits)
  bool router_bias = false;  // gpt-oss: the router and every expert projection have biases
  int64_t shared_hidden = 0;   // 0 = no shared expert
  bool shared_gate = false;    // shared expert scaled by sigmoid(x . w) (Qwen2-MoE)
};

// Additive attention priors of models without RoPE (GOAT, "You Need Better Attention Priors"). GOAT:
// a relative Fourier part kappa (AttnSpec::goat) plus a key-only part u(t) of
// the key position t, per kv head:
//   u_g(t) = sum_j W2[g][j] * silu(sum_p W1[j][p] phi_p(t) + b1[j]) + first[g] * [t == 0]
// with phi(t) = [cos(w_a t), sin(w_a t) for a < abs_rank, t / train_length,
// log1p(t) / log1p(train_length)], w_a = goat_frequencies(abs_rank, base).
// ALiBi: the standard slopes alibi_slopes(n_heads).
enum class PriorKind : uint8_t { None, Goat, Alibi };
struct PriorConfig {
  PriorKind kind = PriorKind::None;
  int goat_rank = 0;        // relative Fourier rank R (lambda_sym/asym [n_kv_heads, R])
  float goat_base = 1e4f;
  int goat_abs_rank = 0;    // Fourier frequencies of phi
  int goat_u_hidden = 0;    // hidden units of u's MLP
  int64_t train_length = 0; // normalises phi's linear and log features
};
int goat_feature_count(const PriorConfig& p);  // 2 * abs_rank + 2
// phi(t) for one position into out[goat_feature_count(p)].
void goat_position_features(const PriorConfig& p, double t, float* out);
// u for every kv head and position: out[g * n + i] = u_g(positions[i]).
// w1 [hidden, features], b1 [hidden], w2 [n_kv_heads, hidden], first [n_kv_heads].
void goat_key_prior(const PriorConfig& p, int64_t n_kv_heads, const float* w1, const float* b1,
                    const float* w2, const float* first, std::span<const int32_t> positions,
                    float* out);

// The gated activation of the feed-forward: a = act(gate) * up.
enum class FfnActivation : uint8_t {
  SiLU,         // SwiGLU (Llama, Qwen, Mixtral, ...)
  GeluTanh,     // GeGLU with tanh-approximated GELU (Gemma)
  ClampedSwiGLU // gpt-oss: gate <= limit, up in [-limit, limit], a = gate * sigmoid(alpha * gate) * (up + 1)
};

struct ModelConfig {
  std::string arch;  // registry name: llama, mistral, qwen2, qwen3, mixtral, qwen2_moe, qwen3_moe, olmoe, ...
  int64_t vocab = 0, dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  int64_t hidden = 0;       // dense FFN hidden size
  int64_t max_seq = 0;      // training context (informational; sessions choose their own)
  float norm_eps = 1e-5f;
  RopeSpec rope;            // style None: no positional encoding
  bool tied_embeddings = false;
  bool qkv_bias = false;    // Qwen2
  bool o_bias = false;
  bool qk_norm = false;     // Qwen3: RMSNorm per head on q and k
  bool qk_norm_full = false;  // OLMoE: RMSNorm over the whole q / k projection
  bool sink_logits = false;   // learned per-head sink logits (self_attn.sinks)
  bool relu_attention = false;  // ReLU attention weights (AttnNormalization::Relu), a sink-free control
  std::vector<int32_t> layer_window;  // per layer; 0 = full attention
  // Layers with a window use this RoPE when set (Gemma 3: theta 10k locally, 1M with scaling globally).
  std::optional<RopeSpec> rope_local;
  FfnActivation ffn_act = FfnActivation::SiLU;
  float swiglu_limit = 7.f, swiglu_alpha = 1.702f;  // ClampedSwiGLU
  // Gemma: norms on the attention and FFN outputs before each residual add
  // (post_attention_layernorm, post_feedforward_layernorm), embeddings scaled by
  // sqrt(dim), and soft-caps on attention logits and final logits (Gemma 2).
  bool post_norms = false;
  float embed_scale = 1.f;
  float attn_scale = 0.f;      // 0 = 1/sqrt(head_dim); Gemma: 1/sqrt(query_pre_attn_scalar)
  float attn_softcap = 0.f;    // 0 = none
  float final_softcap = 0.f;   // 0 = none
  PriorConfig prior;          // GOAT / ALiBi (models without RoPE)
  MoeConfig moe;
  int32_t bos_id = -1, eos_id = -1;
  // Attention variant of a sinklab-trained checkpoint (config.json "sinklab_variant":
  // vanilla, sink-token, sink-logit, goat or alibi); "" when the config does not say.
  std::string variant;
  // The Jinja chat template (tokenizer_config.json beside the model, or GGUF
  // tokenizer.chat_template); "" when the model has none. ChatFormat reads it.
  std::string chat_template;
};

// One line on a known attention variant (ModelConfig::variant), e.g. "learned
// per-head sink logits" for "sink-logit"; nullptr for "" or an unknown name.
const char* attention_variant_description(const std::string& variant);

// What a tap sees: a row-major [rows, cols] float32 tensor that the callback may
// read or overwrite in place, plus the token positions of its rows.
struct TapEvent {
  const std::string& name;
  float* data;
  int64_t rows, cols;
  int layer;                       // -1 outside blocks
  std::span<const int32_t> tokens;  // absolute token indices of the rows (n_past + i)
  std::span<const int32_t> row_ids;  // for expert outputs: which of the batch rows each row is
};
using TapFn = std::function<void(const TapEvent&)>;

// Keys hidden from attention (sink ablation): in the given layers and query
// heads (empty = all), no query sees the keys of these stream token indices
// (n_past + i, as in TapEvent::tokens): they get a -inf key bias. A query
// whose every visible key is hidden gets a zero attention output.
struct KeyMask {
  std::vector<int64_t> tokens;
  std::vector<int> layers, heads;
};

// Named tap points. Names are stable (docs/ARCHITECTURE.md lists them):
// token_embd, blk.L.attn_norm, blk.L.q, blk.L.k, blk.L.v, blk.L.attn_probs (only when
// tapped: [heads * rows, n_ctx]; with a streaming cache the columns are storage slots,
// not stream order), blk.L.attn_ctx, blk.L.attn_out, blk.L.resid_mid,
// blk.L.ffn_norm, blk.L.ffn_act, blk.L.ffn_out, blk.L.moe.router_probs,
// blk.L.moe.expert.E.down_out, blk.L.resid_out, output_norm, logits.
// A pattern may hold '*', which stands for any run of characters
// ("blk.*.attn_probs", "blk.3.*").
class Taps {
 public:
  int add(const std::string& pattern, TapFn fn);  // returns an id for remove()
  void remove(int id);
  void clear();
  bool empty() const { return entries_.empty(); }
  bool wants(const std::string& name) const;
  void fire(const TapEvent& ev) const;

 private:
  struct Entry {
    int id;
    std::string pattern;
    TapFn fn;
  };
  std::vector<Entry> entries_;
  int next_id_ = 1;
};

struct LoadOptions {
  std::string tokenizer_path;  // empty: look beside the model
  DType weight_dtype = DType::F32;  // F32 or BF16 for weights that are not already one of them
  // true: matrices stored in F16 or a ggml block type (Q8_0, Q4_0, Q4_K, Q5_K,
  // Q6_K, MXFP4) stay in it in memory (RSS ~ file size) and are multiplied
  // without dequantising the matrix; false: converted to weight_dtype at load.
  bool keep_quantized = true;
  // true: f32/bf16 matrices are zero-copy views of the memory-mapped file. false:
  // they are copied into process memory at load (as llama.cpp's --no-mmap), which
  // the kernel cannot drop and refault from disk when it reclaims page cache.
  bool mmap = true;
};

// Where a model named on the command line or in Python lives: `path` itself
// when it exists; otherwise, for a Hugging Face repo id "org/name", the
// snapshot of models--org--name in the local Hugging Face cache
// ($HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub or
// ~/.cache/huggingface/hub) that refs/main names, or the newest one. Nothing
// is downloaded. Throws Error listing the folders it looked in when a repo id
// is in none of them; other paths are returned unchanged.
std::string resolve_model_source(const std::string& path);

struct ModelWeights;  // defined in src/model/weights.h
class TensorFile;     // sinklab/formats.h

class Model {
 public:
  // Loads a safetensors file or folder (with config.json), a GGUF file or a llama2.c checkpoint.
  static std::shared_ptr<const Model> load(const std::string& path, const LoadOptions& opts = {});
  // The same from tensors already in memory (a safetensors-format TensorFile
  // with its config.json set, e.g. a training run's current weights); `path`
  // names it in messages and is where a tokenizer is looked for.
  static std::shared_ptr<const Model> from_tensor_file(std::unique_ptr<TensorFile> file,
                                                       const std::string& path, const LoadOptions& opts = {});
  ~Model();

  const ModelConfig& config() const { return config_; }
  const Tokenizer* tokenizer() const { return tokenizer_.get(); }  // may be null
  const ModelWeights& weights() const { return *weights_; }
  int64_t n_params() const;
  int64_t weight_bytes() const;
  // The learned sink logits of one layer ([n_heads]; empty unless config().sink_logits).
  // Throws Error for a layer out of range.
  std::span<const float> sink_logits(int64_t layer) const;
  std::string format() const { return format_; }
  std::string path() const { return path_; }
  // Multi-line human-readable summary (architecture, shapes, dtypes, memory).
  std::string describe() const;

  Model(ModelConfig config, std::unique_ptr<ModelWeights> weights, std::unique_ptr<Tokenizer> tok,
        std::string format, std::string path);

 private:
  ModelConfig config_;
  std::unique_ptr<ModelWeights> weights_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::string format_, path_;
};

struct SessionOptions {
  // The context the cache's unset sizes default to; 0 = the model's max_seq (or 4096).
  int64_t context = 0;
  // KV cache policy spec (parse_cache_spec): "dense", "window:window=256",
  // "sink:sink=4,window=252", "sink-logit:window=128", ... Sizes left out come
  // from `context` (with_default_sizes): dense holds `context` tokens, window and
  // sink-logit keep a window of `context`, sink keeps 4 + (context - 4).
  std::string cache = "dense";
  // Position contract: "reindex", "shift" or "absolute"; "" = reindex for RoPE
  // models, absolute without RoPE (where shift is an Error).
  std::string positions;
  // Dense caches only: each query sees the first attn_sink_keys keys and the
  // keys fewer than attn_window positions back (0 = the model's own windows).
  // A dense run with this mask is the reference of a streaming cache with
  // absolute positions.
  int64_t attn_window = 0;
  int64_t attn_sink_keys = 0;
  // Models with sliding and full layers (gpt-oss, Gemma): the sliding layers keep
  // their own cache of their window (memory ~ window, whatever the policy) and
  // the policy's cache holds only the full layers. false: every layer shares the
  // policy's cache (the reference; refused for models whose sliding layers have
  // their own RoPE, Gemma 3).
  bool local_layer_cache = true;
  // Most tokens one forward takes when sliding layers have their own cache (0 =
  // 256): that cache holds window + local_batch - 1 tokens. Probes that read a
  // whole sequence's attention in one forward set it to the sequence length.
  int64_t local_batch = 0;
};

// Counters of a Session's streaming cache.
struct EvictStats {
  int64_t fed = 0;           // tokens fed since the last reset
  int64_t cached = 0;        // tokens in the cache now
  int64_t capacity = 0;      // most tokens the cache holds
  int64_t evicted = 0;       // fed - cached
  int64_t rows_rotated = 0;  // key rows re-rotated (shift)
  size_t bytes = 0;          // KV storage bytes (both caches)
  // Sliding layers' own cache (SessionOptions::local_layer_cache); 0 when none.
  size_t local_bytes = 0;
  int64_t local_capacity = 0;
  int local_layers = 0;
};

class Session {
 public:
  explicit Session(std::shared_ptr<const Model> model, SessionOptions opts = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Runs the new tokens through the model (batched prefill for several ids).
  // When all_logits is given it receives one row of vocab logits per id.
  void feed(std::span<const int32_t> ids, std::vector<float>* all_logits = nullptr);
  // The same with per-token cache metadata (modality, round or chunk id) for
  // the modal and chunked policies; one entry per id. The Session numbers the
  // tokens itself: TokenMeta::index is ignored. A token the policy rejects
  // (say a chunk larger than its chunk_tokens) throws Error; the tokens before
  // it stay fed.
  void feed(std::span<const int32_t> ids, std::span<const TokenMeta> meta,
            std::vector<float>* all_logits = nullptr);
  // Logits after the last fed token ([vocab]).
  std::span<const float> logits() const;
  int64_t n_past() const { return n_past_; }
  // The cache spec in use, with its default sizes filled in (cache_spec_string prints it).
  const CacheSpec& cache_spec() const { return spec_; }
  // Most tokens the cache holds (for dense, the context limit).
  int64_t context() const { return context_; }
  // True when the cache evicts tokens instead of failing when full.
  bool streaming() const { return streaming_; }
  // The policy's cache (every layer, or the full layers when the sliding layers have their own).
  const StreamingCache& cache() const { return *cache_; }
  PositionContract positions() const { return contract_; }
  EvictStats evict_stats() const;
  // Empties the cache (a fresh policy) and forgets the logits; the KV memory,
  // committed when the session was made, is kept.
  void reset();
  Taps& taps() { return taps_; }
  // Key masks (KeyMask above); add_key_mask throws Error for a layer or head
  // out of range and returns an id for remove_key_mask().
  int add_key_mask(KeyMask mask);
  void remove_key_mask(int id);
  const Model& model() const { return *model_; }

 private:
  struct Buffers;    // the forward's scratch, kept across calls
  struct Forward;    // one chunk's forward: sizes, taps, scratch (session.cpp)
  struct Placement;  // where a chunk's tokens sit in the cache: slots, positions
  Placement place_chunk(StreamingCache& cache, bool rotate_outside, const RopeSpec& rope,
                        std::span<const TokenMeta> given, int64_t n);
  void attention_block(Forward& fw, int layer, Placement& at);
  void ffn_block(Forward& fw, int layer);
  void moe_ffn(Forward& fw, int layer);
  void lm_head(Forward& fw, std::vector<float>* all_logits);
  void feed_chunk(std::span<const int32_t> ids, std::span<const TokenMeta> meta,
                  std::vector<float>* all_logits);
  void make_caches();
  std::unique_ptr<StreamingCache> make_cache(const CacheSpec& spec, int n_layers, PositionContract contract,
                                             const RopeSpec& rope) const;

  std::shared_ptr<const Model> model_;
  SessionOptions opts_;
  CacheSpec spec_;
  PositionContract contract_ = PositionContract::Reindex;
  PositionContract storage_contract_ = PositionContract::Reindex;
  bool streaming_ = false;
  int64_t context_ = 0;
  int64_t n_past_ = 0;
  std::unique_ptr<StreamingCache> cache_;        // the policy's cache
  std::unique_ptr<StreamingCache> local_cache_;  // sliding layers' own window; null when none
  CacheSpec local_spec_;
  int64_t local_chunk_ = 0;                      // most tokens per forward the local cache allows
  std::vector<int32_t> storage_layer_;           // per layer: its index in its cache's storage
  std::unique_ptr<Buffers> buf_;
  Taps taps_;
  std::vector<float> last_logits_;
  std::vector<std::pair<int, KeyMask>> key_masks_;  // src/model/key_mask.cpp
  int next_key_mask_id_ = 1;
};

// ------------------------------------------------------------- sampling ----
struct SamplerOptions {
  float temperature = 0.f;  // 0 = greedy (argmax)
  int top_k = 0;            // 0 = off
  float top_p = 1.f;        // 1 = off
  float min_p = 0.f;        // 0 = off
  float repeat_penalty = 1.f;  // 1 = off (llama.cpp / CTRL style)
  int repeat_last_n = 64;
  uint64_t seed = 0;
};

// ------------------------------------------------------------- generation ----
// The one decode loop (`sinklab generate`, `sinklab stream`, Python
// Model.generate). Its defaults are llama.cpp's: temperature 0.8, top-k 40,
// top-p 0.95, min-p 0.05, no repetition penalty.
struct GenerateOptions {
  int64_t max_tokens = 128;  // -1 = no limit: until EOS, or until a dense cache is full
  float temperature = 0.8f;
  int top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float repeat_penalty = 1.f;
  int repeat_last_n = 64;   // tokens the penalty looks back on; -1 = all kept (see history_limit)
  int64_t seed = -1;        // -1 = a random seed (reported in GenerateResult::seed)
  bool stop_at_eos = true;
  int64_t history_limit = 4096;  // most generated + prompt tokens kept for the penalty (unbounded streams)
  bool keep_ids = true;          // fill GenerateResult::ids (off for unbounded streams)
};

struct GenerateResult {
  std::vector<int32_t> ids;  // the generated tokens (EOS not included; empty without keep_ids)
  int64_t generated = 0;
  int64_t prompt_tokens = 0, decode_steps = 0;
  double prefill_s = 0, decode_s = 0;
  // "token limit (N)", "end of sequence", "context full (N tokens)" or "stopped by the caller"
  std::string stop_reason;
  uint64_t seed = 0;
};

// Feeds `prompt` (not empty) into `session` and samples until a stop. For a
// cache that does not stream, a prompt longer than its context is an Error
// and generation stops cleanly when the context is full. on_token(id) is called
// after each token and may return false to stop; meta_of(index) gives the
// cache metadata of the token at that stream index (modal and chunked caches).
GenerateResult generate_tokens(Session& session, std::span<const int32_t> prompt, const GenerateOptions& options,
                               const std::function<bool(int32_t)>& on_token = {},
                               const std::function<TokenMeta(int64_t)>& meta_of = {});

class Sampler {
 public:
  explicit Sampler(SamplerOptions opts);
  // Picks the next token from logits; `history` feeds the repetition penalty.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);

 private:
  SamplerOptions opts_;
  uint64_t state_;
  double uniform();
  std::vector<std::pair<float, int32_t>> cand_;
};

}  // namespace sinklab
