#pragma once
// lowbit::cuda — activation quantization for the dp4a GEMV path: ggml's
// quantize_row_q8_1 (d = amax / 127, q = roundf(x / d), s = fp16(d * sum q)), the same
// bytes as the CPU's quantize_activations(Format::Q8_1, ...).
#include <cstddef>
#include <cstdint>

#include "lowbit/cuda/status.hpp"

namespace lowbit::cuda {

struct QuantizeQ8_1Arguments {
  const float* x = nullptr;  // device: rows x cols, row-major
  int64_t rows = 0, cols = 0;  // cols a multiple of 32
  void* y = nullptr;         // device: rows x (cols / 32) block_q8_1
};

Status can_implement(const QuantizeQ8_1Arguments& args);
inline size_t get_workspace_size(const QuantizeQ8_1Arguments&) { return 0; }
Status run(const QuantizeQ8_1Arguments& args, void* workspace = nullptr, Stream stream = nullptr);

}  // namespace lowbit::cuda
