// RoPE rotation: angles computed once per position (as a model step does for
// all heads of a token) rotate as the per-vector path does (to rounding: the
// compiler may fuse the multiply-adds of the two differently), and both match
// a float64 rotation for each pairing style, with YaRN's mscale.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "sinklab/attention.h"

namespace sinklab {
namespace {

TEST(Rope, SharedAnglesRotateLikeThePerVectorPathAndFloat64) {
  std::mt19937 rng(3);
  std::normal_distribution<float> N(0.f, 1.f);
  for (RopeStyle style : {RopeStyle::Interleaved, RopeStyle::RotateHalf})
    for (RopeScaling scaling : {RopeScaling::None, RopeScaling::YaRN}) {
      RopeSpec spec;
      spec.style = style;
      spec.theta = 10000.f;
      spec.scaling = scaling;
      if (scaling == RopeScaling::YaRN) {
        spec.factor = 4.f;
        spec.original_context = 256;
      }
      const int head_dim = 64;
      const RopeTable table = rope_table(spec, head_dim);
      const int half = int(table.inv_freq.size());
      for (double pos : {0.0, 1.0, 37.0, 4095.0, 123457.0}) {
        const RopeAngles angles = rope_angles(table, pos);
        std::vector<float> x(head_dim);
        for (float& v : x) v = N(rng);
        std::vector<float> per_vector = x, shared = x;
        rope_rotate(spec, table, per_vector.data(), head_dim, pos);
        rope_rotate(spec, angles, shared.data());
        for (int e = 0; e < head_dim; ++e)
          ASSERT_NEAR(shared[size_t(e)], per_vector[size_t(e)], 1e-6 * (1 + std::abs(per_vector[size_t(e)]))) << e;
        for (int i = 0; i < half; ++i) {
          const int a = style == RopeStyle::RotateHalf ? i : 2 * i;
          const int b = style == RopeStyle::RotateHalf ? i + half : 2 * i + 1;
          const double ang = pos * table.inv_freq[size_t(i)], m = table.mscale;
          const double ra = (x[size_t(a)] * std::cos(ang) - x[size_t(b)] * std::sin(ang)) * m;
          const double rb = (x[size_t(b)] * std::cos(ang) + x[size_t(a)] * std::sin(ang)) * m;
          EXPECT_NEAR(shared[size_t(a)], ra, 1e-5 * (1 + std::abs(ra))) << "pos " << pos << " pair " << i;
          EXPECT_NEAR(shared[size_t(b)], rb, 1e-5 * (1 + std::abs(rb))) << "pos " << pos << " pair " << i;
        }
      }
    }
}

}  // namespace
}  // namespace sinklab
