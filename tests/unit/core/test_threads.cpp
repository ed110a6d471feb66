#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "sinklab/core.h"

namespace sinklab {
namespace {

// Counts how often each item was handed out; every count must be exactly one.
std::vector<int> coverage(int64_t n, int64_t grain, int threads,
                          const std::function<void(int64_t, int64_t, int)>& extra = {}) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
  parallel_ranges(n, grain, threads, [&](int64_t begin, int64_t end, int slot) {
    EXPECT_LT(begin, end);
    EXPECT_LE(end - begin, std::max<int64_t>(grain, 1));
    EXPECT_GE(slot, 0);
    EXPECT_LT(slot, std::max(threads, 1));
    for (int64_t i = begin; i < end; ++i) hits[size_t(i)].fetch_add(1);
    if (extra) extra(begin, end, slot);
  });
  std::vector<int> out;
  for (auto& h : hits) out.push_back(h.load());
  return out;
}

TEST(Threads, ParallelRangesRunsEveryItemOnce) {
  for (int threads : {0, 1, 2, 3, 7})
    for (int64_t n : {0, 1, 5, 16, 17, 100, 1023})
      for (int64_t grain : {0, 1, 3, 16, 64, 5000}) {
        const std::vector<int> hits = coverage(n, grain, threads);
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(hits[size_t(i)], 1) << "item " << i << " n " << n << " grain " << grain << " threads " << threads;
      }
}

TEST(Threads, ParallelRangesPiecesStartOnGrainMultiples) {
  parallel_ranges(1000, 16, 3, [](int64_t begin, int64_t end, int) {
    EXPECT_EQ(begin % 16, 0);
    EXPECT_TRUE(end % 16 == 0 || end == 1000);
  });
}

// A thread held up in its first piece has the rest of its part taken over from
// the back: the others finish everything else, and nothing runs twice.
TEST(Threads, ParallelRangesTakesOverAStalledPart) {
  std::atomic<int> stalled{0};
  std::atomic<int64_t> pieces_while_stalled{0};
  const std::vector<int> hits = coverage(4096, 16, 2, [&](int64_t begin, int64_t, int) {
    if (begin == 0) {
      stalled = 1;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      stalled = 0;
    } else if (stalled.load()) {
      pieces_while_stalled.fetch_add(1);
    }
  });
  for (int h : hits) ASSERT_EQ(h, 1);
  // 256 pieces; piece 0 opens part 0. While it sleeps the other thread runs
  // part 1 (128 pieces) and then the rest of part 0 from its back.
  EXPECT_GT(pieces_while_stalled.load(), 128);
}

// Nested calls (a body that calls parallel_ranges) run the inner call serially.
TEST(Threads, ParallelRangesNestedCallsRunSerially) {
  std::atomic<int64_t> total{0};
  parallel_ranges(8, 1, 2, [&](int64_t, int64_t, int) {
    parallel_ranges(100, 7, 2, [&](int64_t b, int64_t e, int) { total.fetch_add(e - b); });
  });
  EXPECT_EQ(total.load(), 800);
}

}  // namespace
}  // namespace sinklab
