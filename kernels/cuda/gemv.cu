// GEMV family (decode, batch 1..8). GGML formats: one warp per weight row, each lane
// takes 32-element chunks and multiplies them with the Q8_1 activation blocks by dp4a
// (kernels/common/block_levels.hpp: load_chunk and chunk_dot, which the CPU tests check
// against float64); the weight chunk is unpacked once for all batch rows. GSQ layouts:
// one warp per row, each lane a 32-bit word of codes against f16 activations.
#include <cuda_runtime.h>

#include <vector>

#include "common/block_levels.hpp"
#include "common/gsq_device.hpp"
#include "cuda/common.cuh"
#include "lowbit/cuda/gemv.hpp"

namespace lowbit::cuda {
namespace detail {
void launch_quantize_q8_1(const float* x, int64_t nblocks, void* y, cudaStream_t s);
}
namespace {

using kernels::BlockLevels;
constexpr int kWarpsPerBlock = 4;

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <Format F>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    gemv_q8_1_kernel(const void* __restrict__ weights, int64_t rows, int64_t cols,
                     const block_q8_1* __restrict__ x, int batch, float* __restrict__ y) {
  using Block = typename BlockLevels<F>::Block;
  const int lane = threadIdx.x & 31;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (r >= rows) return;
  const int64_t chunks = cols / 32;
  const Block* row = static_cast<const Block*>(weights) + r * (cols / BlockLevels<F>::elems);
  float acc[kMaxGemvBatch] = {};
  for (int64_t c = lane; c < chunks; c += 32) {
    const kernels::WeightChunk<F> w = kernels::load_chunk<F>(row, c);  // once for the whole batch
#pragma unroll
    for (int b = 0; b < kMaxGemvBatch; ++b)
      if (b < batch) acc[b] += kernels::chunk_dot<F>(w, x[b * chunks + c]);
  }
#pragma unroll
  for (int b = 0; b < kMaxGemvBatch; ++b) {
    if (b >= batch) break;
    const float v = warp_sum(acc[b]);
    if (lane == 0) y[b * rows + r] = v;
  }
}

__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    gsq_gemv_kernel(GsqMatrixRef m, const uint16_t* __restrict__ x, int batch, float* __restrict__ y) {
  const int lane = threadIdx.x & 31;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (r >= m.rows) return;
  const int per_word = 32 / m.bits;
  const int64_t words = m.cols / per_word, groups = m.cols / m.group;
  const uint32_t* wr = m.qweight + r * m.words_per_row;
  float acc[kMaxGemvBatch] = {};
  for (int64_t w = lane; w < words; w += 32) {
    const uint32_t word = wr[w];
    const int64_t c0 = w * per_word, g = r * groups + c0 / m.group;
    const float scale = m.scales[g];
    const float zero_or_min = m.mins != nullptr ? m.mins[g] : -scale * static_cast<float>(m.zeros[g]);
#pragma unroll
    for (int b = 0; b < kMaxGemvBatch; ++b) {
      if (b >= batch) break;
      float qx = 0.0f, sx = 0.0f;
      kernels::gsq_word_dot(word, m.bits, x + b * m.cols + c0, qx, sx);
      acc[b] += scale * qx + zero_or_min * sx;
    }
  }
#pragma unroll
  for (int b = 0; b < kMaxGemvBatch; ++b) {
    if (b >= batch) break;
    const float v = warp_sum(acc[b]);
    if (lane == 0) y[b * m.rows + r] = v;
  }
}

using Launch = void (*)(const GemvArguments&, const void* xq, cudaStream_t);

template <Format F>
void launch(const GemvArguments& a, const void* xq, cudaStream_t s) {
  const auto grid = static_cast<unsigned>((a.rows + kWarpsPerBlock - 1) / kWarpsPerBlock);
  gemv_q8_1_kernel<F><<<grid, kWarpsPerBlock * 32, 0, s>>>(a.weights, a.rows, a.cols,
                                                           static_cast<const block_q8_1*>(xq),
                                                           static_cast<int>(a.batch), a.y);
}

constexpr detail::Entry<Format, Launch> kTable[] = {
    {Format::Q4_0, launch<Format::Q4_0>},   {Format::Q4_1, launch<Format::Q4_1>},
    {Format::Q5_0, launch<Format::Q5_0>},   {Format::Q5_1, launch<Format::Q5_1>},
    {Format::Q8_0, launch<Format::Q8_0>},   {Format::Q2_K, launch<Format::Q2_K>},
    {Format::Q3_K, launch<Format::Q3_K>},   {Format::Q4_K, launch<Format::Q4_K>},
    {Format::Q5_K, launch<Format::Q5_K>},   {Format::Q6_K, launch<Format::Q6_K>},
    {Format::IQ4_NL, launch<Format::IQ4_NL>}, {Format::IQ4_XS, launch<Format::IQ4_XS>},
};

}  // namespace

std::span<const Format> gemv_formats() {
  static const std::vector<Format> k = [] {
    std::vector<Format> v;
    for (const auto& e : kTable) v.push_back(e.key);
    return v;
  }();
  return k;
}

Status can_implement(const GemvArguments& a) {
  if (detail::find(kTable, a.format) == nullptr) return Status::not_supported;
  if (a.rows < 1 || a.cols < 1 || a.batch < 1 || a.batch > kMaxGemvBatch) return Status::invalid_problem;
  if (a.cols % traits(a.format).block_elems != 0) return Status::invalid_problem;
  if (a.weights == nullptr || a.y == nullptr || (a.x == nullptr) == (a.x_q8_1 == nullptr)) return Status::invalid_problem;
  if (!detail::aligned(a.weights, 2) || !detail::aligned(a.y, 4)) return Status::misaligned_operand;
  if (a.x != nullptr && !detail::aligned(a.x, 4)) return Status::misaligned_operand;
  if (a.x_q8_1 != nullptr && !detail::aligned(a.x_q8_1, 4)) return Status::misaligned_operand;
  return Status::success;
}

size_t get_workspace_size(const GemvArguments& a) {
  if (a.x == nullptr || a.batch < 1 || a.cols < 1) return 0;
  return static_cast<size_t>(a.batch * (a.cols / 32)) * sizeof(block_q8_1);
}

Status run(const GemvArguments& a, void* workspace, Stream stream) {
  const Status s = can_implement(a);
  if (s != Status::success) return s;
  const void* xq = a.x_q8_1;
  if (a.x != nullptr) {
    if (workspace == nullptr) return Status::workspace_null;
    if (!detail::aligned(workspace, 4)) return Status::misaligned_operand;
    detail::launch_quantize_q8_1(a.x, a.batch * (a.cols / 32), workspace, stream);
    xq = workspace;
  }
  (*detail::find(kTable, a.format))(a, xq, stream);
  return detail::launch_status();
}

Status can_implement(const GsqGemvArguments& a) {
  const GsqMatrixRef& m = a.weights;
  if (m.bits != 4 && m.bits != 8) return Status::not_supported;
  if (m.g_idx != nullptr) return Status::not_supported;
  if (m.rows < 1 || m.cols < 1 || m.cols % 32 != 0 || m.group < 32 || m.group % 32 != 0 || m.cols % m.group != 0)
    return Status::invalid_problem;
  if (m.words_per_row < m.cols * m.bits / 32 || a.batch < 1 || a.batch > kMaxGemvBatch) return Status::invalid_problem;
  if (m.qweight == nullptr || m.scales == nullptr || (m.zeros == nullptr && m.mins == nullptr) || a.x_f16 == nullptr ||
      a.y == nullptr)
    return Status::invalid_problem;
  if (!detail::aligned(m.qweight, 4) || !detail::aligned(a.x_f16, 2) || !detail::aligned(a.y, 4))
    return Status::misaligned_operand;
  return Status::success;
}

Status run(const GsqGemvArguments& a, void*, Stream stream) {
  const Status s = can_implement(a);
  if (s != Status::success) return s;
  const auto grid = static_cast<unsigned>((a.weights.rows + kWarpsPerBlock - 1) / kWarpsPerBlock);
  gsq_gemv_kernel<<<grid, kWarpsPerBlock * 32, 0, stream>>>(a.weights, a.x_f16, static_cast<int>(a.batch), a.y);
  return detail::launch_status();
}

}  // namespace lowbit::cuda
