// GEMM family (prefill, batch 16..4096) on tensor cores. Each 128-thread block owns a
// 64 (weight rows) x 64 (batch rows) tile of y and walks K in steps of 32: the weight
// tile is decoded to f16 into shared memory (one sub-block map per 16 elements,
// kernels/common/block_levels.hpp or gsq_device.hpp), the activation tile copied, and
// four warps multiply 32 x 32 each with WMMA 16x16x16 f16 -> f32.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <vector>

#include "common/block_levels.hpp"
#include "common/gsq_device.hpp"
#include "cuda/common.cuh"
#include "lowbit/cuda/gemm.hpp"

namespace lowbit::cuda {
namespace {

using kernels::BlockLevels;
using namespace nvcuda;

constexpr int BM = 64, BN = 64, BK = 32, kThreads = 128;
constexpr int LDS = BK + 8;   // halves; a multiple of 8 as WMMA wants, off the bank stride
constexpr int LDC = BM + 4;   // floats

template <Format F>
struct GgmlDecoder {
  const void* w;
  int64_t cols;
  // Elements c0 .. c0+15 of row r (c0 a multiple of 16: one sub-block map covers them).
  __device__ void decode16(int64_t r, int64_t c0, __half* out) const {
    using L = BlockLevels<F>;
    const auto* row = static_cast<const typename L::Block*>(w) + r * (cols / L::elems);
    const auto& b = row[c0 / L::elems];
    const int e0 = static_cast<int>(c0 % L::elems);
    const kernels::Affine a = L::map(b, e0 / L::sub);
#pragma unroll
    for (int k = 0; k < 16; ++k) {
      const auto l = static_cast<float>(L::level(b, e0 + k));
      out[k] = __float2half_rn(L::has_offset ? a.scale * l + a.offset : a.scale * l);
    }
  }
};

struct GsqDecoder {
  GsqMatrixRef m;
  __device__ void decode16(int64_t r, int64_t c0, __half* out) const {
    const int64_t g = r * (m.cols / m.group) + c0 / m.group;
    const float scale = m.scales[g];
    const float zero_or_min = m.mins != nullptr ? m.mins[g] : -scale * static_cast<float>(m.zeros[g]);
    const uint32_t* words = m.qweight + r * m.words_per_row;
#pragma unroll
    for (int k = 0; k < 16; ++k) {
      const auto q = static_cast<float>(kernels::packed_code(words, m.bits, c0 + k));
      out[k] = __float2half_rn(scale * q + zero_or_min);
    }
  }
};

template <class Decoder>
__global__ void __launch_bounds__(kThreads)
    gemm_kernel(Decoder dec, int64_t rows, int64_t cols, const __half* __restrict__ x, int64_t batch,
                float* __restrict__ y) {
  __shared__ __align__(32) __half As[BM * LDS];
  __shared__ __align__(32) __half Bs[BN * LDS];
  __shared__ __align__(32) float Cs[BN * LDC];
  const int t = threadIdx.x, warp = t >> 5;
  const int wm = warp & 1, wn = warp >> 1;
  const int64_t r0 = static_cast<int64_t>(blockIdx.x) * BM, b0 = static_cast<int64_t>(blockIdx.y) * BN;

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  const int lr = t >> 1, lc = (t & 1) * 16;  // this thread's 16-element run in both tiles
  for (int64_t k0 = 0; k0 < cols; k0 += BK) {
    dec.decode16(r0 + lr, k0 + lc, &As[lr * LDS + lc]);
    const int64_t b = b0 + lr;
    uint4* dst = reinterpret_cast<uint4*>(&Bs[lr * LDS + lc]);
    if (b < batch) {
      const uint4* src = reinterpret_cast<const uint4*>(x + b * cols + k0 + lc);
      dst[0] = src[0];
      dst[1] = src[1];
    } else {
      dst[0] = dst[1] = make_uint4(0, 0, 0, 0);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fb[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(fa[i], &As[(wm * 32 + i * 16) * LDS + kk], LDS);
#pragma unroll
      for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(fb[j], &Bs[(wn * 32 + j * 16) * LDS + kk], LDS);
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    __syncthreads();
  }
  // C(m, n) lands at Cs[n * LDC + m], so y[b * rows + r] is written along r.
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(&Cs[(wn * 32 + j * 16) * LDC + wm * 32 + i * 16], acc[i][j], LDC, wmma::mem_col_major);
  __syncthreads();
  for (int i = t; i < BM * BN; i += kThreads) {
    const int n = i / BM, m = i % BM;
    if (b0 + n < batch) y[(b0 + n) * rows + r0 + m] = Cs[n * LDC + m];
  }
}

dim3 grid_of(int64_t rows, int64_t batch) {
  return dim3(static_cast<unsigned>(rows / BM), static_cast<unsigned>((batch + BN - 1) / BN));
}

using Launch = void (*)(const GemmArguments&, cudaStream_t);

template <Format F>
void launch(const GemmArguments& a, cudaStream_t s) {
  gemm_kernel<GgmlDecoder<F>><<<grid_of(a.rows, a.batch), kThreads, 0, s>>>(
      GgmlDecoder<F>{a.weights, a.cols}, a.rows, a.cols, reinterpret_cast<const __half*>(a.x_f16), a.batch, a.y);
}

constexpr detail::Entry<Format, Launch> kTable[] = {
    {Format::Q4_0, launch<Format::Q4_0>},   {Format::Q4_1, launch<Format::Q4_1>},
    {Format::Q5_0, launch<Format::Q5_0>},   {Format::Q5_1, launch<Format::Q5_1>},
    {Format::Q8_0, launch<Format::Q8_0>},   {Format::Q2_K, launch<Format::Q2_K>},
    {Format::Q3_K, launch<Format::Q3_K>},   {Format::Q4_K, launch<Format::Q4_K>},
    {Format::Q5_K, launch<Format::Q5_K>},   {Format::Q6_K, launch<Format::Q6_K>},
    {Format::IQ4_NL, launch<Format::IQ4_NL>}, {Format::IQ4_XS, launch<Format::IQ4_XS>},
};

Status check_common(int64_t rows, int64_t cols, int64_t batch, const void* x, const float* y) {
  if (rows < 1 || cols < 1 || rows % BM != 0 || cols % BK != 0) return Status::invalid_problem;
  if (batch < kMinGemmBatch || batch > kMaxGemmBatch) return Status::invalid_problem;
  if (x == nullptr || y == nullptr) return Status::invalid_problem;
  if (!detail::aligned(x, 16) || !detail::aligned(y, 4)) return Status::misaligned_operand;
  return Status::success;
}

}  // namespace

std::span<const Format> gemm_formats() {
  static const std::vector<Format> k = [] {
    std::vector<Format> v;
    for (const auto& e : kTable) v.push_back(e.key);
    return v;
  }();
  return k;
}

Status can_implement(const GemmArguments& a) {
  if (detail::find(kTable, a.format) == nullptr) return Status::not_supported;
  const Status s = check_common(a.rows, a.cols, a.batch, a.x_f16, a.y);
  if (s != Status::success) return s;
  if (a.cols % traits(a.format).block_elems != 0 || a.weights == nullptr) return Status::invalid_problem;
  if (!detail::aligned(a.weights, 2)) return Status::misaligned_operand;
  return Status::success;
}

Status run(const GemmArguments& a, void*, Stream stream) {
  const Status s = can_implement(a);
  if (s != Status::success) return s;
  (*detail::find(kTable, a.format))(a, stream);
  return detail::launch_status();
}

Status can_implement(const GsqGemmArguments& a) {
  const GsqMatrixRef& m = a.weights;
  if (m.bits != 4 && m.bits != 8) return Status::not_supported;
  if (m.g_idx != nullptr) return Status::not_supported;
  const Status s = check_common(m.rows, m.cols, a.batch, a.x_f16, a.y);
  if (s != Status::success) return s;
  if (m.group < 32 || m.group % 32 != 0 || m.cols % m.group != 0 || m.words_per_row < m.cols * m.bits / 32)
    return Status::invalid_problem;
  if (m.qweight == nullptr || m.scales == nullptr || (m.zeros == nullptr && m.mins == nullptr))
    return Status::invalid_problem;
  if (!detail::aligned(m.qweight, 4)) return Status::misaligned_operand;
  return Status::success;
}

Status run(const GsqGemmArguments& a, void*, Stream stream) {
  const Status s = can_implement(a);
  if (s != Status::success) return s;
  const GsqMatrixRef& m = a.weights;
  gemm_kernel<GsqDecoder><<<grid_of(m.rows, a.batch), kThreads, 0, stream>>>(
      GsqDecoder{m}, m.rows, m.cols, reinterpret_cast<const __half*>(a.x_f16), a.batch, a.y);
  return detail::launch_status();
}

}  // namespace lowbit::cuda
