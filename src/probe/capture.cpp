#include <algorithm>

#include <unistd.h>

#include "common.h"
#include "sinklab/probe.h"

namespace sinklab {

namespace probe_detail {

void check_ids(std::span<const int32_t> ids, const char* probe) {
  check(!ids.empty(), std::string(probe) + ": no token ids (ids is empty)");
}

std::vector<int> resolve_layers(const ModelConfig& config, const std::vector<int>& layers, const char* probe) {
  std::vector<int> out;
  if (layers.empty()) {
    for (int l = 0; l < int(config.n_layers); ++l) out.push_back(l);
    return out;
  }
  for (int l : layers) {
    check(l >= 0 && l < config.n_layers, std::string(probe) + ": layer " + std::to_string(l) +
                                             " is out of range (the model has layers 0.." +
                                             std::to_string(config.n_layers - 1) + ")");
    out.push_back(l);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::unique_ptr<Session> session_for(const std::shared_ptr<const Model>& model, int64_t n, const char* probe) {
  check(model != nullptr, std::string(probe) + ": model is null");
  return std::make_unique<Session>(model, probe_session_options(n));
}

std::string layer_tap(int layer, const char* what) { return "blk." + std::to_string(layer) + "." + what; }

void check_fired(const std::vector<std::string>& names, const std::vector<bool>& fired, const char* probe) {
  for (size_t i = 0; i < names.size(); ++i)
    check(fired[i], std::string(probe) + ": tap '" + names[i] +
                        "' never fired (unknown tap name, or a tensor this model does not have)");
}

}  // namespace probe_detail

SessionOptions probe_session_options(int64_t n_tokens) {
  SessionOptions opts;
  opts.context = std::max<int64_t>(n_tokens, 1);
  opts.local_batch = opts.context;
  return opts;
}

void check_attention_capture_fits(const ModelConfig& config, int64_t n_tokens, int64_t layers, const char* what) {
  // Attention probabilities are materialised: heads x n x n floats per layer
  // captured, plus the float64 reference rows that compute them.
  const double n = double(n_tokens), heads = double(config.n_heads);
  const double bytes = heads * n * n * (4.0 * double(layers) + 12.0);
  const double ram = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGE_SIZE));
  check(ram <= 0 || bytes <= 0.8 * ram,
        std::string(what) + ": the attention probabilities of " + std::to_string(layers) + " layer(s) over " +
            std::to_string(n_tokens) + " tokens need " + std::to_string(int64_t(bytes / (1 << 20))) +
            " MiB (heads x tokens^2 floats each, materialised), more than this machine's " +
            std::to_string(int64_t(ram / (1 << 20))) + " MiB can hold; use fewer tokens");
}

std::map<std::string, CapturedTensor> capture_taps(Session& session, std::span<const int32_t> ids,
                                                   const std::vector<std::string>& names) {
  using namespace probe_detail;
  check_ids(ids, "capture_taps");
  check(!names.empty(), "capture_taps: no tap names given");
  int64_t prob_layers = 0;
  for (const std::string& name : names)
    prob_layers += name.size() > 11 && name.compare(name.size() - 11, 11, ".attn_probs") == 0;
  if (prob_layers > 0) check_attention_capture_fits(session.model().config(), int64_t(ids.size()), prob_layers,
                                                    "capture_taps");
  std::map<std::string, CapturedTensor> out;
  std::vector<bool> fired(names.size(), false);
  TapGuard guard(session);
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    check(!name.empty() && name.back() != '*',
          "capture_taps: '" + name + "' is not an exact tap name (patterns with '*' are not captured)");
    guard.add(name, [&out, &fired, i](const TapEvent& e) {
      CapturedTensor& t = out[e.name];
      t.rows = e.rows;
      t.cols = e.cols;
      t.data.assign(e.data, e.data + e.rows * e.cols);
      t.row_ids.assign(e.row_ids.begin(), e.row_ids.end());
      fired[i] = true;
    });
  }
  session.reset();
  session.feed(ids);
  check_fired(names, fired, "capture_taps");
  return out;
}

}  // namespace sinklab
