// Installing interventions on a Session: sink masks become Session key masks,
// resets and expert pruning become taps that overwrite the tensor in place.
#include <algorithm>
#include <memory>

#include "sinklab/intervene.h"

namespace sinklab {

namespace {

// Stream index of row r of a tap event (expert outputs name their batch rows;
// the logits of a feed without all_logits are its last rows).
int64_t token_of_row(const TapEvent& e, int64_t r) {
  if (!e.row_ids.empty()) return e.tokens[size_t(e.row_ids[size_t(r)])];
  return e.tokens[e.tokens.size() - size_t(e.rows) + size_t(r)];
}

// Running per-dim sums of the rows that are not reset, for mode=mean.
struct ResetState {
  std::vector<int64_t> dims, tokens;  // tokens sorted; empty = every row
  ResetMode mode = ResetMode::Zero;
  std::vector<double> sums;
  int64_t count = 0;

  bool resets(int64_t token) const {
    return tokens.empty() || std::binary_search(tokens.begin(), tokens.end(), token);
  }

  void apply(const TapEvent& e) {
    if (!e.tokens.empty() && e.tokens.front() == 0) {  // a new stream
      std::fill(sums.begin(), sums.end(), 0.0);
      count = 0;
    }
    if (mode == ResetMode::Mean) {
      for (int64_t r = 0; r < e.rows; ++r) {
        if (!tokens.empty() && resets(token_of_row(e, r))) continue;
        for (size_t i = 0; i < dims.size(); ++i) sums[i] += double(e.data[r * e.cols + dims[i]]);
        ++count;
      }
    }
    for (int64_t r = 0; r < e.rows; ++r) {
      if (!resets(token_of_row(e, r))) continue;
      for (size_t i = 0; i < dims.size(); ++i)
        e.data[r * e.cols + dims[i]] = mode == ResetMode::Zero || count == 0 ? 0.f : float(sums[i] / double(count));
    }
  }
};

}  // namespace

AttachedInterventions::AttachedInterventions(Session& session, std::span<const Intervention> list)
    : session_(session) {
  validate_interventions(list, session.model().config());
  try {
    for (const Intervention& iv : list) {
      switch (iv.kind) {
        case InterventionKind::SinkMask:
          mask_ids_.push_back(session.add_key_mask(KeyMask{iv.tokens, iv.layers, iv.heads}));
          break;
        case InterventionKind::Reset: {
          auto state = std::make_shared<ResetState>();
          state->dims = iv.dims;
          state->tokens = iv.tokens;
          std::sort(state->tokens.begin(), state->tokens.end());
          state->mode = iv.mode;
          state->sums.assign(iv.dims.size(), 0.0);
          const std::string name = iv.tap.empty() ? "blk." + std::to_string(iv.layer) + ".resid_out" : iv.tap;
          tap_ids_.push_back(session.taps().add(name, [state](const TapEvent& e) { state->apply(e); }));
          break;
        }
        case InterventionKind::PruneExpert:
          for (int e : iv.experts) {
            const std::string name =
                "blk." + std::to_string(iv.layer) + ".moe.expert." + std::to_string(e) + ".down_out";
            tap_ids_.push_back(session.taps().add(
                name, [](const TapEvent& ev) { std::fill(ev.data, ev.data + ev.rows * ev.cols, 0.f); }));
          }
          break;
        case InterventionKind::Prepend:
          break;
      }
    }
  } catch (...) {
    for (int id : tap_ids_) session_.taps().remove(id);
    for (int id : mask_ids_) session_.remove_key_mask(id);
    throw;
  }
}

AttachedInterventions::~AttachedInterventions() {
  for (int id : tap_ids_) session_.taps().remove(id);
  for (int id : mask_ids_) session_.remove_key_mask(id);
}

}  // namespace sinklab
