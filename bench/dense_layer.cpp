#include "dense_layer.hpp"

#include <cmath>
#include <cstdint>

namespace bench {
namespace {

// A small deterministic generator (xorshift32) mapped to [-1, 1].
float next_unit(std::uint32_t& state) {
  state ^= state << 13;
  state ^= state >> 17;
  state ^= state << 5;
  return static_cast<float>(state) / 2147483648.0f - 1.0f;
}

}  // namespace

dense_layer::dense_layer() : w_(dim, dim), b_(dim) {
  std::uint32_t state = 2463534242u;
  const float scale = 1.0f / std::sqrt(static_cast<float>(dim));
  for (Eigen::Index c = 0; c < dim; ++c) {
    for (Eigen::Index r = 0; r < dim; ++r) w_(r, c) = scale * next_unit(state);
  }
  for (Eigen::Index r = 0; r < dim; ++r) b_(r) = 0.1f * next_unit(state);
}

std::vector<float> dense_layer::apply(const std::vector<float>& x) const {
  std::vector<float> y(static_cast<std::size_t>(dim));
  Eigen::Map<Eigen::VectorXf> out(y.data(), dim);
  out.noalias() = w_ * Eigen::Map<const Eigen::VectorXf>(x.data(), dim);
  out = (out + b_).cwiseMax(0.0f);
  return y;
}

void dense_layer::apply_to_columns(const Eigen::MatrixXf& x, Eigen::MatrixXf& y) const {
  y.noalias() = w_ * x;
  y.colwise() += b_;
  y = y.cwiseMax(0.0f);
}

std::vector<float> dense_layer::sample_input(unsigned seed) {
  std::uint32_t state = 0x9e3779b9u ^ (seed * 2654435761u);
  if (state == 0) state = 1;
  std::vector<float> x(static_cast<std::size_t>(dim));
  for (auto& v : x) v = next_unit(state);
  return x;
}

std::vector<std::vector<float>> batched_dense_layer::handle_batch(
    std::span<const std::vector<float>> batch) {
  const auto n = static_cast<Eigen::Index>(batch.size());
  x_.resize(dense_layer::dim, n);
  for (Eigen::Index i = 0; i < n; ++i) {
    x_.col(i) = Eigen::Map<const Eigen::VectorXf>(batch[static_cast<std::size_t>(i)].data(),
                                                  dense_layer::dim);
  }
  layer_->apply_to_columns(x_, y_);
  std::vector<std::vector<float>> out(batch.size());
  for (Eigen::Index i = 0; i < n; ++i) {
    const float* column = y_.col(i).data();
    out[static_cast<std::size_t>(i)].assign(column, column + dense_layer::dim);
  }
  return out;
}

bool close_enough(const std::vector<float>& y, const std::vector<float>& expected) {
  if (y.size() != expected.size()) return false;
  for (std::size_t i = 0; i < y.size(); ++i) {
    if (std::abs(y[i] - expected[i]) > 1e-3f * (1.0f + std::abs(expected[i]))) return false;
  }
  return true;
}

}  // namespace bench
