// The generators' random numbers: splitmix64, so a seed gives the same
// sequence on every platform and standard library.
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>

#include "sinklab/core.h"

namespace sinklab::tasks {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    const uint64_t x = splitmix64(state_);
    state_ += 0x9e3779b97f4a7c15ull;
    return x;
  }
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  int64_t below(int64_t n) { return int64_t(uniform() * double(n)); }  // 0..n-1
  double normal() {  // Box-Muller
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }

 private:
  uint64_t state_;
};

}  // namespace sinklab::tasks
