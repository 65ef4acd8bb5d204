#pragma once
// Fresh quantized data for the CUDA tests and the CPU checks of the shared math:
// synthetic weights through the format's own quantizer (activation formats through the
// activation quantizer).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "lowbit/core/synthetic.hpp"
#include "lowbit/formats/format.hpp"
#include "lowbit/formats/quantize.hpp"
#include "lowbit/kernels/activations.hpp"

namespace lowbit::test {

inline std::vector<std::byte> random_blocks(Format f, int64_t rows, int64_t cols, uint64_t seed, float scale = 1.0f) {
  auto w = synthetic_weights(rows, cols, seed);
  for (float& v : w) v *= scale;
  std::vector<std::byte> q(quantized_size(f, rows, cols));
  if (traits(f).activation_only)
    quantize_activations(f, ConstMatrixView<float>(w.data(), rows, cols), q);
  else
    quantize(f, ConstMatrixView<float>(w.data(), rows, cols), q);
  return q;
}

}  // namespace lowbit::test
