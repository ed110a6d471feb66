// Interventions: edits of a running Session, addressed by tap names and layers,
// parsed from one spec string that the CLI (--ablate SPEC) and Python
// (ablate=[SPEC, ...]) share. Several compose; they act in the order given.
//
// A spec is KIND or KIND:key=value,key=value,... ; a list value separates its
// items with ';' and may use inclusive ranges a..b ("dims=17;40..42"; quote
// it in a shell). Token indices are stream indices: the position of a token
// in everything fed to the Session, prepended tokens included.
//
//   sink:keys=K[,layers=L][,heads=H]      hide the keys of tokens K from the queries of
//                                          layers L and query heads H (default: keys=0, all
//                                          layers and heads); -inf key bias, so the masked
//                                          attention probabilities are exactly 0
//   reset:layer=L|tap=NAME,dims=D[,tokens=T][,mode=zero|mean]
//                                          overwrite dims D of the rows of tokens T (default:
//                                          every row) of blk.L.resid_out or of the named tap
//   prune:layer=L,expert=E                 zero the down projection output of experts E of
//                                          layer L (blk.L.moe.expert.E.down_out)
//   prepend[:token=ID|bos]                 feed these tokens (default bos) before the text;
//                                          callers do not score them, and the text's token i
//                                          moves to stream index i + (number prepended)
//
// mode=mean sets each reset entry to the mean of that dim over the rows of the
// same tap that are NOT reset, among all rows seen since the stream started
// (earlier feeds and the current one; a feed starting at stream index 0 starts
// a new stream). With no such row yet the mean is 0; with tokens omitted (every
// row reset) it is the mean over every row seen, the reset ones included.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sinklab/model.h"

namespace sinklab {

enum class InterventionKind : uint8_t { SinkMask, Reset, PruneExpert, Prepend };
enum class ResetMode : uint8_t { Zero, Mean };

struct Intervention {
  InterventionKind kind = InterventionKind::SinkMask;
  std::string spec;                 // as written
  std::vector<int64_t> tokens;      // sink: hidden keys; reset: rows (empty = every row)
  std::vector<int> layers, heads;   // sink: empty = all
  std::string tap;                  // reset: the tap it edits ("" = blk.<layer>.resid_out)
  int layer = -1;                   // reset (with no tap), prune
  std::vector<int64_t> dims;        // reset
  ResetMode mode = ResetMode::Zero; // reset
  std::vector<int> experts;         // prune
  std::vector<int32_t> token_ids;   // prepend: ids; -1 stands for the model's BOS
};

// Throws Error naming the spec and what was expected.
Intervention parse_intervention(const std::string& spec);
std::vector<Intervention> parse_interventions(const std::vector<std::string>& specs);

// The width (columns) of a tap tensor of this model; throws Error for a name the
// model never fires (unknown name, layer or expert out of range).
int64_t tap_width(const ModelConfig& config, const std::string& name);

// Checks every intervention against a model (layers, heads, experts, tap names,
// dims, BOS); throws Error naming the spec.
void validate_interventions(std::span<const Intervention> list, const ModelConfig& config);

// Token ids the prepend interventions put before a text, in order.
std::vector<int32_t> intervention_prefix(std::span<const Intervention> list, const ModelConfig& config);

// One line: the specs joined by " + " ("none" when empty).
std::string describe_interventions(std::span<const Intervention> list);

// Installs interventions on a session (key masks and taps, added before any
// later tap so probes see the edited tensors) and removes exactly those when
// destroyed. Prepend is not installed: feed intervention_prefix() yourself.
class AttachedInterventions {
 public:
  AttachedInterventions(Session& session, std::span<const Intervention> list);
  ~AttachedInterventions();
  AttachedInterventions(const AttachedInterventions&) = delete;
  AttachedInterventions& operator=(const AttachedInterventions&) = delete;

 private:
  Session& session_;
  std::vector<int> tap_ids_, mask_ids_;
};

}  // namespace sinklab
