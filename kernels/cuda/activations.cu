// Q8_1 activation quantization, one warp per 32-element block, lane j on element j:
// the warp's max and integer sum are exact whatever the reduction order, and the
// remaining float operations are the CPU reference's (compiled with --fmad=false), so
// the bytes equal quantize_activations_q8_1__scalar's, which equal ggml's.
#include <cuda_runtime.h>

#include "cuda/common.cuh"
#include "lowbit/core/half.hpp"
#include "lowbit/cuda/activations.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::cuda {
namespace {

__global__ void quantize_q8_1_kernel(const float* __restrict__ x, int64_t nblocks, block_q8_1* __restrict__ y) {
  const int lane = threadIdx.x & 31;
  const int64_t warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  if (warp >= nblocks) return;
  const float v = x[warp * 32 + lane];
  float amax = fabsf(v);
  for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const int q = static_cast<int>(roundf(v * id));
  int sum = q;
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  block_q8_1& b = y[warp];
  b.qs[lane] = static_cast<int8_t>(q);
  if (lane == 0) {
    b.d = fp32_to_fp16(d);
    b.s = fp32_to_fp16(static_cast<float>(sum) * d);
  }
}

}  // namespace

Status can_implement(const QuantizeQ8_1Arguments& a) {
  if (a.rows < 0 || a.cols < 0 || a.cols % 32 != 0) return Status::invalid_problem;
  if (a.rows * a.cols > 0 && (a.x == nullptr || a.y == nullptr)) return Status::invalid_problem;
  if (!detail::aligned(a.x, 4) || !detail::aligned(a.y, 2)) return Status::misaligned_operand;
  return Status::success;
}

namespace detail {
// Shared with the GEMV's float-activation path.
void launch_quantize_q8_1(const float* x, int64_t nblocks, void* y, cudaStream_t s) {
  if (nblocks == 0) return;
  quantize_q8_1_kernel<<<blocks_for(nblocks * 32, 256), 256, 0, s>>>(x, nblocks, static_cast<block_q8_1*>(y));
}
}  // namespace detail

Status run(const QuantizeQ8_1Arguments& a, void*, Stream stream) {
  const Status s = can_implement(a);
  if (s != Status::success) return s;
  detail::launch_quantize_q8_1(a.x, a.rows * a.cols / 32, a.y, stream);
  return detail::launch_status();
}

}  // namespace lowbit::cuda
