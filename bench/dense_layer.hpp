// The compute-bound work of the dense scenario: one dense layer
// y = relu(W x + b) with a 1024x1024 float W (Eigen, single-threaded), applied
// per vector (matrix-vector) or to the columns of a batch (matrix-matrix).
#pragma once

#include <Eigen/Dense>

#include <cstddef>
#include <memory>
#include <span>
#include <utility>
#include <vector>

namespace bench {

class dense_layer {
 public:
  static constexpr Eigen::Index dim = 1024;

  // Deterministic pseudo-random weights and bias.
  dense_layer();

  // y = relu(W x + b) for one x: a matrix-vector product.
  std::vector<float> apply(const std::vector<float>& x) const;

  // Y = relu(W X + b) for the columns of X: a matrix-matrix product.
  void apply_to_columns(const Eigen::MatrixXf& x, Eigen::MatrixXf& y) const;

  // An input vector with entries in [-1, 1], determined by `seed`.
  static std::vector<float> sample_input(unsigned seed);

 private:
  Eigen::MatrixXf w_;
  Eigen::VectorXf b_;
};

// A batch function over a shared layer: copies the batch's vectors into the
// columns of a matrix, applies the layer once, copies the columns out. Keeps
// its matrices between batches; one per partition (or per worker thread).
class batched_dense_layer {
 public:
  explicit batched_dense_layer(std::shared_ptr<const dense_layer> layer)
      : layer_(std::move(layer)) {}

  std::vector<std::vector<float>> handle_batch(std::span<const std::vector<float>> batch);

 private:
  std::shared_ptr<const dense_layer> layer_;
  Eigen::MatrixXf x_;
  Eigen::MatrixXf y_;
};

// True if `y` matches `expected` entry by entry, allowing for rounding from
// a different summation order (matrix-matrix vs matrix-vector).
bool close_enough(const std::vector<float>& y, const std::vector<float>& expected);

}  // namespace bench
