#include <algorithm>

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
  SessionOptions opts;
  opts.context = std::max<int64_t>(n, 1);
  return std::make_unique<Session>(model, opts);
}

std::string layer_tap(int layer, const char* what) { return "blk." + std::to_string(layer) + "." + what; }

void check_fired(const std::vector<std::string>& names, const std::vector<bool>& fired, const char* probe) {
  for (size_t i = 0; i < names.size(); ++i)
    check(fired[i], std::string(probe) + ": tap '" + names[i] +
                        "' never fired (unknown tap name, or a tensor this model does not have)");
}

}  // namespace probe_detail

std::map<std::string, CapturedTensor> capture_taps(Session& session, std::span<const int32_t> ids,
                                                   const std::vector<std::string>& names) {
  using namespace probe_detail;
  check_ids(ids, "capture_taps");
  check(!names.empty(), "capture_taps: no tap names given");
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
