#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "sinklab/core.h"

using namespace sinklab;

TEST(Core, Bf16RoundTripAndRounding) {
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f)), 1.0f);
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(-2.5f)), -2.5f);
  // 1 + 2^-8 is exactly halfway between two bf16 values: ties to even (1.0).
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 1.0f / 256)), 1.0f);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-100, 100);
  for (int i = 0; i < 1000; ++i) {
    const float x = u(rng);
    EXPECT_NEAR(bf16_to_f32(f32_to_bf16(x)), x, std::fabs(x) * (1.0f / 256));
  }
}

TEST(Core, F16RoundTrip) {
  for (float x : {0.0f, 1.0f, -1.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 0.333251953125f})
    EXPECT_EQ(f16_to_f32(f32_to_f16(x)), x) << x;
  EXPECT_TRUE(std::isinf(f16_to_f32(f32_to_f16(1e6f))));
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(NAN))));
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> u(-1000, 1000);
  for (int i = 0; i < 1000; ++i) {
    const float x = u(rng);
    EXPECT_NEAR(f16_to_f32(f32_to_f16(x)), x, std::fabs(x) * (1.0f / 2048));
  }
  // Every f16 bit pattern that is a number survives f16 -> f32 -> f16.
  for (uint32_t b = 0; b < 65536; ++b) {
    const float f = f16_to_f32(f16{uint16_t(b)});
    if (std::isnan(f)) continue;
    EXPECT_EQ(f32_to_f16(f).bits, b);
  }
}

TEST(Core, TensorViewStridesAndChecks) {
  float buf[24];
  TensorView t(buf, DType::F32, {2, 3, 4});
  EXPECT_EQ(t.numel(), 24);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.at(1, 2, 3), buf + 23);
  EXPECT_NO_THROW(check_view(t, "t", {2, 3, 4}, true));
  EXPECT_THROW(check_view(t, "t", {2, 3, 5}), Error);
  TensorView nul;
  EXPECT_THROW(check_view(nul, "nul", {}), Error);
  auto aliased = TensorView::strided(buf, DType::F32, {2, 3, 4}, {0, 4, 1});
  EXPECT_NO_THROW(check_view(aliased, "a", {2, 3, 4}, false));  // broadcast read is fine
  EXPECT_THROW(check_view(aliased, "a", {2, 3, 4}, true), Error);  // but never as an output
  try {
    check_view(t, "attention: q", {2, 3, 5});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("attention: q"), std::string::npos);
  }
}

TEST(Core, MappedFileReadsAndReportsMissing) {
  const std::string path = ::testing::TempDir() + "/sinklab_mmap_test.bin";
  {
    std::ofstream f(path, std::ios::binary);
    f << "hello";
  }
  MappedFile m(path);
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(m.data()), 5), "hello");
  std::remove(path.c_str());
  try {
    MappedFile missing(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
  }
}

TEST(Core, AlignedArrayIsAligned) {
  auto a = aligned_array<float>(13);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.get()) % 64, 0u);
}

namespace {

// The smaps block of the mapping that contains `p`: its header line and fields.
std::string smaps_block_of(const void* p) {
  std::ifstream in("/proc/self/smaps");
  std::string line, block;
  bool inside = false;
  const auto addr = reinterpret_cast<uintptr_t>(p);
  while (std::getline(in, line)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(':') > line.find(' ')) {
      if (inside) break;
      inside = addr >= lo && addr < hi;
    }
    if (inside) block += line + "\n";
  }
  return block;
}

}  // namespace

TEST(Core, HugePageAllocIsAlignedMarkedAndFreshAfterHeapReuse) {
  // Fault in and free a heap buffer first: memory that reused its 4 KiB pages
  // could not hold huge pages.
  {
    std::vector<uint8_t> heap(size_t(64) << 20, 1);
    ASSERT_EQ(heap[12345], 1);
  }
  const size_t bytes = 3 * kHugePageBytes + 100;
  AlignedPtr<uint8_t> p = huge_page_alloc(bytes);
  ASSERT_NE(p.get(), nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p.get()) % kHugePageBytes, 0u);
  EXPECT_EQ(p.get_deleter().mapped_bytes, 4 * kHugePageBytes);  // whole huge pages, unmapped when freed
  std::memset(p.get(), 7, 4 * kHugePageBytes);                  // the whole rounded span is usable
  EXPECT_EQ(p[4 * kHugePageBytes - 1], 7);
#if defined(__linux__)
  std::ifstream thp("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string mode;
  std::getline(thp, mode);
  if (mode.find("[never]") == std::string::npos && !mode.empty()) {
    const std::string block = smaps_block_of(p.get());
    ASSERT_FALSE(block.empty());
    EXPECT_NE(block.find(" hg"), std::string::npos) << "mapping not marked MADV_HUGEPAGE:\n" << block;
  }
#endif
}

TEST(Core, CommittedArrayIsZeroedForSmallAndHugeSizes) {
  for (size_t n : {size_t(1), size_t(1000), kHugePageBytes / 4 + 3, kHugePageBytes}) {
    AlignedPtr<float> a = committed_array<float>(n);
    ASSERT_NE(a.get(), nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(a.get()) % 64, 0u);
    EXPECT_EQ(a.get_deleter().mapped_bytes > 0, n * sizeof(float) >= kHugePageBytes) << n;
    for (size_t i = 0; i < n; i += 997) ASSERT_EQ(a[i], 0.f) << i;
    EXPECT_EQ(a[n - 1], 0.f);
  }
}
