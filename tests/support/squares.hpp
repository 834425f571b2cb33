// Test support: a serving that squares ints and throws on a negative one
// (the whole execution fails).
#pragma once

#include <span>
#include <stdexcept>
#include <vector>

#include "batch_serving/serving.hpp"

namespace batch_serving::testing {

inline serving<int, int> squares_failing_on_negatives() {
  return serving<int, int>([](std::span<const int> xs) {
    std::vector<int> out;
    for (int x : xs) {
      if (x < 0) throw std::runtime_error("negative");
      out.push_back(x * x);
    }
    return out;
  });
}

}  // namespace batch_serving::testing
