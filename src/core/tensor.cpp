#if defined(__linux__)
#include <sys/mman.h>
#endif

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <numeric>
#include <sstream>

#include "sinklab/core.h"

namespace sinklab {

#ifndef SINKLAB_VERSION
#define SINKLAB_VERSION "0.0.0"
#endif
const char* version() { return SINKLAB_VERSION; }

TensorView::TensorView(void* d, DType t, std::initializer_list<int64_t> shp) : data(d), dtype(t) {
  check(shp.size() <= size_t(kMaxDims), "TensorView: at most 4 dimensions are supported");
  ndim = int(shp.size());
  int i = 0;
  for (int64_t s : shp) shape[i++] = s;
  int64_t st = 1;
  for (int k = ndim - 1; k >= 0; --k) {
    stride[k] = st;
    st *= shape[k];
  }
}

TensorView TensorView::strided(void* d, DType t, std::initializer_list<int64_t> shp,
                               std::initializer_list<int64_t> strides) {
  check(shp.size() == strides.size(), "TensorView::strided: shape and strides differ in rank");
  TensorView v(d, t, shp);
  int i = 0;
  for (int64_t s : strides) v.stride[i++] = s;
  return v;
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= shape[i];
  return n;
}

bool TensorView::is_contiguous() const {
  int64_t st = 1;
  for (int k = ndim - 1; k >= 0; --k) {
    if (shape[k] != 1 && stride[k] != st) return false;
    st *= shape[k];
  }
  return true;
}

std::string TensorView::shape_str() const {
  std::ostringstream os;
  os << '[';
  for (int i = 0; i < ndim; ++i) os << (i ? ", " : "") << shape[i];
  os << ']';
  return os.str();
}

void check_view(const TensorView& t, const char* what, std::initializer_list<int64_t> shp,
                bool writable) {
  // Messages are built only on failure: this runs on every attention call.
  const auto name = [what] { return std::string(what); };
  check(t.data != nullptr, [&] { return name() + ": null data pointer"; });
  check(t.ndim == int(shp.size()), [&] {
    return name() + ": expected rank " + std::to_string(shp.size()) + ", got shape " + t.shape_str();
  });
  int i = 0;
  for (int64_t s : shp) {
    check(t.shape[i] >= 0, [&] { return name() + ": negative dimension in shape " + t.shape_str(); });
    if (s >= 0 && t.shape[i] != s) {
      std::ostringstream os;
      os << what << ": dimension " << i << " is " << t.shape[i] << ", expected " << s
         << " (shape " << t.shape_str() << ")";
      throw Error(os.str());
    }
    ++i;
  }
  for (int k = 0; k < t.ndim; ++k)
    check(t.stride[k] >= 0, [&] { return name() + ": negative strides are not supported"; });
  // Innermost dimension must be unit-stride for the vectorised kernels.
  if (t.ndim > 0 && t.shape[t.ndim - 1] > 1)
    check(t.stride[t.ndim - 1] == 1, [&] { return name() + ": the last dimension must have stride 1"; });
  if (writable) {
    // Sorting dims by stride, each stride must cover the extent of the smaller ones,
    // otherwise two indices alias the same element.
    int order[TensorView::kMaxDims];
    int n = 0;
    for (int k = 0; k < t.ndim; ++k)
      if (t.shape[k] > 1) order[n++] = k;
    for (int j = 1; j < n; ++j)  // insertion sort of at most kMaxDims entries
      for (int m = j; m > 0 && t.stride[order[m]] < t.stride[order[m - 1]]; --m)
        std::swap(order[m], order[m - 1]);
    int64_t extent = 1;
    for (int j = 0; j < n; ++j) {
      const int k = order[j];
      check(t.stride[k] >= extent,
            [&] { return name() + ": output strides overlap (null or aliasing stride)"; });
      extent = t.stride[k] * t.shape[k];
    }
  }
}

void AlignedFree::operator()(void* p) const {
#if defined(__linux__)
  if (mapped_bytes > 0) {
    munmap(p, mapped_bytes);
    return;
  }
#endif
  std::free(p);
}

void* aligned_alloc_bytes(size_t bytes) {
  const size_t rounded = round_up(std::max<size_t>(bytes, 1), 64);
  void* p = std::aligned_alloc(64, rounded);
  if (!p) throw Error("out of memory allocating " + std::to_string(bytes) + " bytes");
  return p;
}

AlignedPtr<uint8_t> huge_page_alloc(size_t bytes) {
  const size_t rounded = round_up(std::max<size_t>(bytes, 1), kHugePageBytes);
#if defined(__linux__)
  // Map one huge page more than needed, keep the 2 MiB-aligned part, and mark
  // it before the first touch so that faults can place whole huge pages.
  const size_t span = rounded + kHugePageBytes;
  void* map = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED) throw Error("out of memory mapping " + std::to_string(bytes) + " bytes");
  const uintptr_t base = reinterpret_cast<uintptr_t>(map);
  const uintptr_t aligned = round_up(base, kHugePageBytes);
  if (aligned > base) munmap(map, aligned - base);
  const uintptr_t end = aligned + rounded;
  if (base + span > end) munmap(reinterpret_cast<void*>(end), base + span - end);
  auto* p = reinterpret_cast<uint8_t*>(aligned);
  madvise(p, rounded, MADV_HUGEPAGE);
  return AlignedPtr<uint8_t>(p, AlignedFree{rounded});
#else
  void* p = std::aligned_alloc(kHugePageBytes, rounded);
  if (!p) throw Error("out of memory allocating " + std::to_string(bytes) + " bytes");
  return AlignedPtr<uint8_t>(static_cast<uint8_t*>(p));
#endif
}

AlignedPtr<uint8_t> committed_alloc(size_t bytes) {
  if (bytes < kHugePageBytes) {
    AlignedPtr<uint8_t> p(static_cast<uint8_t*>(aligned_alloc_bytes(bytes)));
    std::memset(p.get(), 0, round_up(std::max<size_t>(bytes, 1), 64));
    return p;
  }
  AlignedPtr<uint8_t> p = huge_page_alloc(bytes);
  std::memset(p.get(), 0, round_up(bytes, kHugePageBytes));
  return p;
}

}  // namespace sinklab
