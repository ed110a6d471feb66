// WeightArena: every piece 64-byte aligned, inside one block, disjoint from
// the others and writable end to end, for small, odd and block-sized requests.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "../../../src/model/weights.h"

namespace sinklab {
namespace {

TEST(WeightArena, PiecesAreAlignedDisjointAndWritable) {
  WeightArena arena;
  EXPECT_TRUE(arena.empty());
  std::vector<std::pair<uint8_t*, size_t>> pieces;
  for (size_t bytes : {size_t(1), size_t(63), size_t(64), size_t(65), size_t(3) << 20, size_t(100),
                       size_t(40) << 20, size_t(7), size_t(31) << 20, size_t(1000)}) {
    uint8_t* p = arena.allocate(bytes);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u) << bytes;
    std::memset(p, 0xab, bytes);  // ASan would catch a piece shorter than asked
    pieces.push_back({p, bytes});
  }
  EXPECT_FALSE(arena.empty());
  std::sort(pieces.begin(), pieces.end());
  for (size_t i = 1; i < pieces.size(); ++i)
    EXPECT_LE(pieces[i - 1].first + pieces[i - 1].second, pieces[i].first) << "pieces overlap";
}

}  // namespace
}  // namespace sinklab
