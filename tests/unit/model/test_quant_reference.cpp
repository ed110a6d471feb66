// sinklab's block decoders against an independent numpy implementation
// (tests/reference/make_quant_blocks.py, run by ctest's quant_blocks fixture,
// which sets SINKLAB_QUANT_BLOCKS to its folder): bit-for-bit equal float32
// values for random blocks of every type, and the fused dot kernels of every
// compiled path within 1e-5 (relative to the sum of |w x|) of a float64 dot
// over the numpy values.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "../../../src/model/quant_kernels.h"

using namespace sinklab;

namespace {

std::string blocks_dir() {
  const char* env = std::getenv("SINKLAB_QUANT_BLOCKS");
  if (!env || !*env || !std::filesystem::is_directory(env)) return "";
  return env;
}

std::string missing_message() {
  const char* env = std::getenv("SINKLAB_QUANT_BLOCKS");
  if (!env || !*env)
    return "SINKLAB_QUANT_BLOCKS is not set; run through ctest (fixture quant_blocks runs "
           "tests/reference/make_quant_blocks.py, which needs python3-numpy)";
  return std::string("SINKLAB_QUANT_BLOCKS=") + env + " does not exist (make_quant_blocks.py was skipped: is "
         "python3-numpy installed?)";
}

struct Reference {
  TensorType type;
  int64_t count = 0, elements = 0;  // blocks (values for f16/bf16) and elements in each
  std::vector<uint8_t> raw;
  std::vector<float> values;
};

TensorType type_named(const std::string& name) {
  const std::pair<const char*, TensorType> names[] = {
      {"f16", TensorType::F16},   {"bf16", TensorType::BF16}, {"q8_0", TensorType::Q8_0}, {"q4_0", TensorType::Q4_0},
      {"q4_k", TensorType::Q4_K}, {"q5_k", TensorType::Q5_K}, {"q6_k", TensorType::Q6_K}, {"mxfp4", TensorType::MXFP4}};
  for (const auto& [n, t] : names)
    if (name == n) return t;
  throw Error("unknown type in index.txt: " + name);
}

template <class T>
std::vector<T> read_all(const std::string& path, size_t count) {
  std::vector<T> out(count);
  std::ifstream f(path, std::ios::binary);
  f.read(reinterpret_cast<char*>(out.data()), std::streamsize(count * sizeof(T)));
  EXPECT_TRUE(f.good() && f.peek() == EOF) << path << " should hold " << count << " items of " << sizeof(T) << " bytes";
  return out;
}

std::vector<Reference> read_references(const std::string& dir) {
  std::vector<Reference> refs;
  std::ifstream index(dir + "/index.txt");
  std::string name;
  Reference r;
  while (index >> name >> r.count >> r.elements) {
    r.type = type_named(name);
    r.raw = read_all<uint8_t>(dir + "/" + name + ".bin", size_t(r.count) * tensor_type_block_bytes(r.type));
    r.values = read_all<float>(dir + "/" + name + ".f32", size_t(r.count * r.elements));
    refs.push_back(r);
  }
  return refs;
}

}  // namespace

TEST(QuantReference, DecodersMatchNumpyBitForBit) {
  const std::string dir = blocks_dir();
  if (dir.empty()) GTEST_SKIP() << missing_message();
  const std::vector<Reference> refs = read_references(dir);
  ASSERT_EQ(refs.size(), 8u) << dir << "/index.txt";
  for (const Reference& r : refs) {
    ASSERT_EQ(r.elements, tensor_type_block_size(r.type)) << tensor_type_name(r.type);
    const int64_t n = r.count * r.elements;
    std::vector<float> got(size_t(n), std::nanf("")), rows(size_t(n), std::nanf(""));
    dequantize(TensorEntry{"w", r.type, {n}, r.raw.data(), r.raw.size()}, got.data());
    quant::dequantize_rows(r.type, r.raw.data(), r.count, r.elements, rows.data());
    int64_t mismatches = 0;
    for (int64_t i = 0; i < n; ++i) {
      uint32_t a, b, c;
      std::memcpy(&a, &got[size_t(i)], 4), std::memcpy(&b, &r.values[size_t(i)], 4), std::memcpy(&c, &rows[size_t(i)], 4);
      if (a == b && c == b) continue;
      if (++mismatches <= 5)
        ADD_FAILURE() << tensor_type_name(r.type) << " element " << i << " (block " << i / r.elements << "): sinklab "
                      << got[size_t(i)] << " / rows " << rows[size_t(i)] << ", numpy " << r.values[size_t(i)];
    }
    EXPECT_EQ(mismatches, 0) << tensor_type_name(r.type);
  }
}

TEST(QuantReference, DotKernelsMatchNumpyValues) {
  const std::string dir = blocks_dir();
  if (dir.empty()) GTEST_SKIP() << missing_message();
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (const Reference& r : read_references(dir)) {
    if (!quant::has_kernels(r.type)) continue;
    // Rows of 4 blocks (64 values for F16); rows holding a non-finite value are left out.
    const int64_t cols = r.type == TensorType::F16 ? 64 : 4 * r.elements, n = 3;
    const int64_t nrows = r.count * r.elements / cols;
    const size_t stride = quant::row_bytes(r.type, cols);
    std::vector<float> x(size_t(n * cols));
    for (float& v : x) v = normal(rng);
    for (quant::KernelPath path : quant::compiled_kernel_paths())
      for (int64_t row = 0; row < nrows; ++row) {
        const float* w = r.values.data() + row * cols;
        if (!std::all_of(w, w + cols, [](float v) { return std::isfinite(v); })) continue;
        float y[n];
        std::fill(y, y + n, std::nanf(""));
        quant::dot_rows(path, r.type, r.raw.data() + size_t(row) * stride, 1, cols, x.data(), n, y, 1);
        for (int64_t i = 0; i < n; ++i) {
          double ref = 0, mag = 0;
          for (int64_t c = 0; c < cols; ++c) {
            ref += double(w[c]) * double(x[size_t(i * cols + c)]);
            mag += std::fabs(double(w[c]) * double(x[size_t(i * cols + c)]));
          }
          ASSERT_LE(std::fabs(double(y[i]) - ref), 1e-5 * mag + 1e-38)
              << quant::kernel_path_name(path) << " " << tensor_type_name(r.type) << " row " << row << " vector " << i;
        }
      }
  }
}
