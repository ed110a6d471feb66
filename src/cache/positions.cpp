// Position contracts: which positions the kernel uses for the survivors'
// keys and for the next query.
#include <limits>
#include <string>

#include "sinklab/cache.h"

namespace sinklab {

namespace {

int32_t to_position(int64_t p, const char* what) {
  if (p < 0 || p > std::numeric_limits<int32_t>::max())
    throw Error(std::string("cache positions: ") + what + " position " + std::to_string(p) +
                " does not fit int32");
  return int32_t(p);
}

}  // namespace

const char* position_contract_name(PositionContract c) {
  switch (c) {
    case PositionContract::Reindex: return "reindex";
    case PositionContract::Shift: return "shift";
    case PositionContract::Absolute: return "absolute";
  }
  return "?";
}

PositionContract position_contract_from_name(std::string_view name) {
  if (name == "reindex") return PositionContract::Reindex;
  if (name == "shift") return PositionContract::Shift;
  if (name == "absolute") return PositionContract::Absolute;
  throw Error("unknown position contract '" + std::string(name) +
              "' (known: reindex, shift, absolute)");
}

KeyMode key_mode_for(PositionContract c) {
  return c == PositionContract::Shift ? KeyMode::Rotated : KeyMode::Raw;
}

CachePositions cache_positions(std::span<const TokenMeta> survivors, PositionContract contract,
                               int64_t query_index) {
  CachePositions p;
  p.keys.resize(survivors.size());
  if (contract == PositionContract::Absolute) {
    for (size_t i = 0; i < survivors.size(); ++i)
      p.keys[i] = to_position(survivors[i].index, "key");
    p.query = to_position(query_index, "query");
  } else {
    // Reindex and Shift: positions within the cache, the query right after.
    for (size_t i = 0; i < survivors.size(); ++i) p.keys[i] = to_position(int64_t(i), "key");
    p.query = to_position(int64_t(survivors.size()), "query");
  }
  return p;
}

}  // namespace sinklab
