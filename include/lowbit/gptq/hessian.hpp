#pragma once
// Accumulates the Hessian of a linear layer's reconstruction error from its
// calibration inputs: H = (2 / N) * sum over tokens of x x^T, N the token count,
// kept as a running average so batches can arrive one at a time.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "lowbit/core/matrix_view.hpp"

namespace lowbit {

enum class ActivationType { f32, f16, bf16 };

class HessianAccumulator {
 public:
  // Refuses (Error) a layer whose cols x cols matrix would not fit in available memory.
  explicit HessianAccumulator(int64_t cols);

  // Adds a batch of activations [tokens x cols], row-major. NaN or Inf anywhere gives
  // an Error naming the batch, token and column, and leaves the accumulator unchanged.
  void add(ConstMatrixView<float> x);
  // The same for fp16 / bf16 activations given as raw 16-bit values.
  void add(ActivationType type, const uint16_t* data, int64_t tokens, int64_t stride);
  // Combines another accumulator's tokens with ours (both running averages).
  void merge(const HessianAccumulator& other);

  int64_t cols() const { return cols_; }
  int64_t tokens() const { return tokens_; }
  int64_t batches() const { return batches_; }
  // The full symmetric matrix, row-major cols x cols.
  std::vector<float> matrix() const;
  // diag(H) / 2 = mean of x^2 per input column: llama.cpp's imatrix semantics.
  std::vector<float> importance() const;

  // Binary file: "LBHESS01", u64 cols, u64 tokens, u64 batches, cols*cols f32 (row-major,
  // upper triangle meaningful). Written atomically (temporary file, then rename).
  void save(const std::string& path) const;
  static HessianAccumulator load(const std::string& path);

  // The upper triangle, row-major (what the solver reads).
  const std::vector<float>& upper() const { return h_; }

 private:
  void add_checked(const float* x, int64_t tokens, int64_t stride);
  int64_t cols_ = 0, tokens_ = 0, batches_ = 0;
  std::vector<float> h_;  // upper triangle valid, row-major
};

// Throws Error when `bytes` more memory is unlikely to be available; `what` names the use.
void check_memory_fits(double bytes, const std::string& what);

}  // namespace lowbit
