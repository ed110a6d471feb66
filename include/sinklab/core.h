// Core types shared by every sinklab module: errors, dtypes, strided tensor
// views, aligned buffers, memory-mapped files and the thread count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace sinklab {

// The one exception type of the library. Messages name the file, tensor or
// flag that was wrong and what was expected.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Throws Error(message) when cond is false.
inline void check(bool cond, const std::string& message) {
  if (!cond) throw Error(message);
}
inline void check(bool cond, const char* message) {
  if (!cond) throw Error(message);
}
// Throws Error(message()) when cond is false; the message is built only then
// (for checks on hot paths, such as every attention call of a decode step).
template <class MakeMessage>
  requires std::is_invocable_r_v<std::string, MakeMessage>
inline void check(bool cond, MakeMessage&& message) {
  if (!cond) throw Error(message());
}

const char* version();

// ---------------------------------------------------------------- hashes ----
// splitmix64: one step of the mixer seeded generators use (the same numbers on
// every platform and standard library).
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
// FNV-1a over bytes, continuing from h (cache keys, file checksums).
inline uint64_t fnv1a64(std::string_view bytes, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  return h;
}

// ---------------------------------------------------------------- dtypes ----
enum class DType : uint8_t { F32, BF16, F16 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);
DType dtype_from_name(std::string_view name);  // "f32", "bf16", "f16"

struct bf16 { uint16_t bits; };
struct f16 { uint16_t bits; };

// Round-to-nearest-even conversions; NaN stays NaN.
inline float bf16_to_f32(bf16 h) {
  uint32_t u = uint32_t(h.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline bf16 f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{uint16_t((u >> 16) | 0x40u)};
  u += 0x7fffu + ((u >> 16) & 1u);
  return bf16{uint16_t(u >> 16)};
}
float f16_to_f32(f16 h);
f16 f32_to_f16(float f);

// Converts n elements of type `from` at src into float32 at dst.
void to_f32(DType from, const void* src, float* dst, size_t n);
// Converts n float32 values into `to` at dst.
void from_f32(DType to, const float* src, void* dst, size_t n);

// ------------------------------------------------------------ tensor view ----
// A non-owning view of up to 4 dimensions with element strides.
// A stride of 0 broadcasts that dimension.
struct TensorView {
  static constexpr int kMaxDims = 4;
  void* data = nullptr;
  DType dtype = DType::F32;
  int ndim = 0;
  int64_t shape[kMaxDims] = {0, 0, 0, 0};
  int64_t stride[kMaxDims] = {0, 0, 0, 0};  // in elements

  TensorView() = default;
  // Contiguous (row-major) view.
  TensorView(void* data, DType dtype, std::initializer_list<int64_t> shape);
  static TensorView strided(void* data, DType dtype, std::initializer_list<int64_t> shape,
                            std::initializer_list<int64_t> strides);

  bool empty() const { return data == nullptr; }
  int64_t numel() const;
  bool is_contiguous() const;
  // Pointer to the element at index (i0, i1, ...); missing trailing indices are 0.
  void* at(int64_t i0, int64_t i1 = 0, int64_t i2 = 0, int64_t i3 = 0) const {
    const int64_t off = i0 * stride[0] + i1 * stride[1] + i2 * stride[2] + i3 * stride[3];
    return static_cast<char*>(data) + off * int64_t(dtype_size(dtype));
  }
  std::string shape_str() const;
};

// Validates that `t` has the given rank and, for non-negative entries, the given
// shape; throws an Error naming `what` otherwise. Also rejects null data and
// strides that would make two distinct indices overlap in a written tensor.
void check_view(const TensorView& t, const char* what, std::initializer_list<int64_t> shape,
                bool writable = false);

// ---------------------------------------------------------- aligned memory ----
// `n` rounded up to a whole number of `multiple`s.
constexpr size_t round_up(size_t n, size_t multiple) { return (n + multiple - 1) / multiple * multiple; }
// Frees what aligned_alloc_bytes (mapped_bytes == 0) or huge_page_alloc
// (the mapping's length) returned.
struct AlignedFree {
  size_t mapped_bytes = 0;
  void operator()(void* p) const;
};
// 64-byte aligned, uninitialised storage.
template <typename T>
using AlignedPtr = std::unique_ptr<T[], AlignedFree>;
void* aligned_alloc_bytes(size_t bytes);
template <typename T>
AlignedPtr<T> aligned_array(size_t n) {
  return AlignedPtr<T>(static_cast<T*>(aligned_alloc_bytes(n * sizeof(T))));
}
// Uninitialised whole 2 MiB pages, 2 MiB aligned, in a mapping of their own
// marked for transparent huge pages before any page is touched (Linux; the
// kernel may still use 4 KiB pages when it has no free 2 MiB ones). Fewer TLB
// misses for data streamed or read in scattered rows. Memory from the heap
// would often reuse pages a freed buffer had faulted in at 4 KiB, which stay
// 4 KiB pages: the benchmark model's weights were 42% on huge pages that way.
constexpr size_t kHugePageBytes = size_t(2) << 20;
AlignedPtr<uint8_t> huge_page_alloc(size_t bytes);
// Zero-filled storage whose pages are all touched now, so later writes never
// fault a page in (memory a decode step would otherwise pay for mid-step).
// Blocks of 2 MiB and more come from huge_page_alloc.
AlignedPtr<uint8_t> committed_alloc(size_t bytes);
template <typename T>
AlignedPtr<T> committed_array(size_t n) {
  AlignedPtr<uint8_t> bytes = committed_alloc(n * sizeof(T));
  const AlignedFree free_it = bytes.get_deleter();
  return AlignedPtr<T>(reinterpret_cast<T*>(bytes.release()), free_it);
}

// ------------------------------------------------------------ mapped file ----
// Throws Error naming `what` and `path` unless path is a regular file that
// exists (a FIFO, device or folder cannot be read twice or has no end).
void check_regular_file(const std::string& path, const std::string& what);

// Reads a regular file in blocks of `block_bytes`, calling fn(block) for each
// in order until the file ends or fn returns false; memory stays at one block.
// Throws Error naming `what` and the path when it cannot be read.
void read_file_blocks(const std::string& path, const std::string& what, size_t block_bytes,
                      const std::function<bool(std::string_view)>& fn);

// Read-only memory map of a whole file. Throws Error naming the path on failure.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// ---------------------------------------------------------------- threads ----
// Number of worker threads used by parallel kernels (OpenMP). 0 = hardware.
void set_num_threads(int n);
int num_threads();
// Runs body(task, slot) for every task in [0, n) on the calling thread and up to
// threads - 1 pool workers; slot (0 = caller, < threads) names the thread, for
// per-thread scratch. Tasks are claimed one at a time and the caller waits only
// for claimed ones, so a worker the OS has not scheduled costs nothing. Serial
// when threads <= 1 or when another call holds the pool (nested calls included).
void parallel_tasks(int64_t n, int threads, const std::function<void(int64_t task, int slot)>& body);
// Runs body(begin, end, slot) over [0, n) in pieces of at most `grain` items.
// Each thread owns one contiguous part of [0, n) and works through it front to
// back; a thread that finishes its part takes pieces from the back of parts
// still in progress. Each thread thus reads one sequential stream (what
// memory-bound loops such as matrix-vector products want) and claims pieces
// from a cache line no other thread touches until stealing starts; a thread
// the OS has not scheduled has its whole part taken over. Every item is run
// exactly once; serial under the same conditions as parallel_tasks.
void parallel_ranges(int64_t n, int64_t grain, int threads,
                     const std::function<void(int64_t begin, int64_t end, int slot)>& body);
// Model steps of at most this many tokens (decode) run their matrix-vector
// products and attention on parallel_tasks; longer ones on BLAS and OpenMP.
constexpr int64_t kPoolStepTokens = 4;

}  // namespace sinklab
