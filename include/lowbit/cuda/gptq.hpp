#pragma once
// lowbit::cuda — GPTQ on the GPU: the Hessian by cuBLAS SYRK, the upper Cholesky factor
// of H^-1 by cuSOLVER (potrf, potri, potrf), the blocked column sweep as kernels and
// the lazy-block updates by cuBLAS SGEMM. Same algorithm and options as the CPU's
// gptq_solve into a GsqTarget (lowbit/gptq/solver.hpp), for the subset can_implement
// accepts: symmetric or asymmetric integer zeros, min/max (rtn) group fits, no
// act-order, no static groups. cuBLAS / cuSOLVER handles are created once per thread
// and device and reused.
#include <cstddef>
#include <cstdint>

#include "lowbit/cuda/status.hpp"
#include "lowbit/gptq/solver.hpp"
#include "lowbit/gsq/config.hpp"
#include "lowbit/gsq/quantizer.hpp"

namespace lowbit::cuda {

// H <- H * seen / (seen + tokens) + 2 / (seen + tokens) * X^T X (the CPU
// HessianAccumulator's running average); the upper triangle of the row-major h is written.
struct HessianArguments {
  const float* x = nullptr;  // device: tokens x cols, row-major
  int64_t tokens = 0, cols = 0;
  int64_t tokens_seen = 0;   // tokens already averaged into h (0: h is overwritten)
  float* h_upper = nullptr;  // device: cols x cols
};
Status can_implement(const HessianArguments& args);
inline size_t get_workspace_size(const HessianArguments&) { return 0; }
Status run(const HessianArguments& args, void* workspace = nullptr, Stream stream = nullptr);

struct GptqArguments {
  GptqConfig solver{};
  GsqConfig target{};              // search must be rtn
  const float* w = nullptr;        // device: rows x cols, row-major (not modified)
  const float* h_upper = nullptr;  // device: cols x cols, upper triangle read
  int64_t rows = 0, cols = 0;
  uint8_t* codes = nullptr;        // device: rows x cols unsigned codes
  float* scales = nullptr;         // device: rows x groups
  int32_t* zeros = nullptr;        // device: rows x groups
  float* q = nullptr;              // device, optional: rows x cols decoded weights
};

struct GptqGpuReport {
  double damp_percent_used = 0;
  int damp_retries = 0;
  int64_t dead_columns = 0;
};

Status can_implement(const GptqArguments& args);
size_t get_workspace_size(const GptqArguments& args);
// Runs the whole solve on `stream`. Unlike the other entry points it reads two small
// results back (cuSOLVER's factorisation status, the dead-column count), so it
// synchronises the stream. Throws lowbit::Error on failure (naming the status).
GptqGpuReport run(const GptqArguments& args, void* workspace, Stream stream = nullptr);

// Host convenience (allocates, copies, synchronises): GPTQ of the host matrix w with
// the host Hessian into a GsqResult, like gptq_solve with a GsqTarget.
GsqResult gptq_solve_host(const GptqConfig& solver, const GsqConfig& target, ConstMatrixView<float> w,
                          std::span<const float> hessian_upper, GptqGpuReport* report = nullptr);

}  // namespace lowbit::cuda
