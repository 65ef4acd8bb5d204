#pragma once
// lowbit::cuda — matrix products for prefill (batch 16..4096) on tensor cores: weight
// tiles are decoded to f16 in shared memory and multiplied by f16 activations with
// f32 accumulation (WMMA 16x16x16).
//   y[b * rows + r] = sum_c W[r, c] * x[b * cols + c]
#include <cstddef>
#include <cstdint>
#include <span>

#include "lowbit/cuda/status.hpp"
#include "lowbit/formats/format.hpp"
#include "lowbit/kernels/gsq_gemv.hpp"

namespace lowbit::cuda {

inline constexpr int64_t kMinGemmBatch = 16, kMaxGemmBatch = 4096;

struct GemmArguments {
  Format format = Format::Q4_K;
  const void* weights = nullptr;    // device: rows x row_bytes(format, cols)
  int64_t rows = 0, cols = 0;       // rows a multiple of 64, cols a multiple of 32 and of the block
  int64_t batch = 16;               // kMinGemmBatch .. kMaxGemmBatch
  const uint16_t* x_f16 = nullptr;  // device: batch x cols fp16
  float* y = nullptr;               // device: batch x rows
};

std::span<const Format> gemm_formats();
Status can_implement(const GemmArguments& args);
inline size_t get_workspace_size(const GemmArguments&) { return 0; }
Status run(const GemmArguments& args, void* workspace = nullptr, Stream stream = nullptr);

struct GsqGemmArguments {
  GsqMatrixRef weights{};           // device pointers; bits 4 or 8, no g_idx, rows % 64 == 0, group % 32 == 0
  int64_t batch = 16;
  const uint16_t* x_f16 = nullptr;
  float* y = nullptr;
};

Status can_implement(const GsqGemmArguments& args);
inline size_t get_workspace_size(const GsqGemmArguments&) { return 0; }
Status run(const GsqGemmArguments& args, void* workspace = nullptr, Stream stream = nullptr);

}  // namespace lowbit::cuda
