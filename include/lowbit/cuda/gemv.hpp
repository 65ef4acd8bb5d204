#pragma once
// lowbit::cuda — matrix-vector products for decode (batch 1..8) on quantized weights.
//   y[b * rows + r] = sum_c W[r, c] * x[b * cols + c]
// GGML formats take Q8_1 activations and multiply with dp4a (as llama.cpp's MMVQ);
// given float activations, run() first quantizes them into the workspace. GSQ layouts
// (4- and 8-bit codes, GPTQ checkpoints' math) take f16 activations.
#include <cstddef>
#include <cstdint>
#include <span>

#include "lowbit/cuda/status.hpp"
#include "lowbit/formats/format.hpp"
#include "lowbit/kernels/gsq_gemv.hpp"

namespace lowbit::cuda {

inline constexpr int64_t kMaxGemvBatch = 8;

struct GemvArguments {
  Format format = Format::Q4_K;
  const void* weights = nullptr;  // device: rows x row_bytes(format, cols)
  int64_t rows = 0, cols = 0;     // cols a multiple of the format's block
  int64_t batch = 1;              // 1 .. kMaxGemvBatch
  // Exactly one of: float activations (quantized to Q8_1 in the workspace) or
  // activations already in Q8_1 (batch x cols / 32 blocks, e.g. from QuantizeQ8_1Arguments).
  const float* x = nullptr;
  const void* x_q8_1 = nullptr;
  float* y = nullptr;             // device: batch x rows
};

// The GGML weight formats the dp4a GEMV serves (its table's keys).
std::span<const Format> gemv_formats();
Status can_implement(const GemvArguments& args);
size_t get_workspace_size(const GemvArguments& args);  // Q8_1 copy of x when x is given
Status run(const GemvArguments& args, void* workspace = nullptr, Stream stream = nullptr);

struct GsqGemvArguments {
  GsqMatrixRef weights{};          // device pointers; bits 4 or 8, no g_idx, group % 32 == 0, cols % 32 == 0
  int64_t batch = 1;               // 1 .. kMaxGemvBatch
  const uint16_t* x_f16 = nullptr; // device: batch x cols fp16
  float* y = nullptr;              // device: batch x rows
};

Status can_implement(const GsqGemvArguments& args);
inline size_t get_workspace_size(const GsqGemvArguments&) { return 0; }
Status run(const GsqGemvArguments& args, void* workspace = nullptr, Stream stream = nullptr);

}  // namespace lowbit::cuda
