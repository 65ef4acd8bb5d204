#pragma once
// GSQ arithmetic shared by the CUDA kernels and the host (LOWBIT_HD): the decode of a
// packed code under its group's parameters, the dot product of one 32-bit word of
// codes with f16 activations, and GPTQ's min/max (rtn) group fit and encoder, written
// to be bit-identical to src/gsq/group_fit.cpp and include/lowbit/gsq/group_fit.hpp
// (tests/kernels/test_cuda_common.cpp checks that on the CPU).
#include <cstdint>

#include "common/packed_codes.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/core/host_device.hpp"

namespace lowbit::kernels {

// W[r, c] of a GSQ matrix with contiguous groups; mins null means scale * (q - zero).
LOWBIT_HD float gsq_decode(const uint32_t* qweight, int64_t words_per_row, int bits, int64_t groups, int64_t group,
                           const float* scales, const int32_t* zeros, const float* mins, int64_t r, int64_t c) {
  const uint32_t q = packed_code(qweight + r * words_per_row, bits, c);
  const int64_t g = r * groups + c / group;
  if (mins != nullptr) return scales[g] * static_cast<float>(q) + mins[g];
  return scales[g] * static_cast<float>(static_cast<int32_t>(q) - zeros[g]);
}

// For one word of 4-bit (8 codes) or 8-bit (4 codes) codes against the matching f16
// activations: qx += sum q * x, sx += sum x.
LOWBIT_HD void gsq_word_dot(uint32_t word, int bits, const uint16_t* x, float& qx, float& sx) {
  const int n = 32 / bits;
  const uint32_t mask = (1u << bits) - 1u;
  for (int k = 0; k < n; ++k) {
    const float xv = fp16_to_fp32(x[k]);
    qx += static_cast<float>((word >> (bits * k)) & mask) * xv;
    sx += xv;
  }
}

// ---------------------------------------------------------------- GPTQ quantizer

// detail::round_even of group_fit.hpp: clamp, then 1.5 * 2^23 pushes the fraction out.
LOWBIT_HD float round_even_clamped(float v) {
  v = v < -4096.0f ? -4096.0f : v;
  v = v > 4096.0f ? 4096.0f : v;
  const float magic = 12582912.0f;
  return (v + magic) - magic;  // not folded: no fast-math anywhere in lowbit
}

// Scale storage of GsqConfig (ScaleStorage: 0 fp16, 1 bf16, 2 fp32).
LOWBIT_HD float round_storage(int storage, float v) {
  if (storage == 0) return fp16_to_fp32(fp32_to_fp16(v));
  if (storage == 1) return bf16_to_fp32(fp32_to_bf16(v));
  return v;
}

struct GsqIntParams {
  float scale;
  int32_t zero;
};

// params_for_range + fit_group for ScaleSearch::rtn and the two integer-zero schemes,
// over n values x[0], x[stride], ...
LOWBIT_HD GsqIntParams gsq_fit_rtn(const float* x, int64_t n, int64_t stride, int bits, bool symmetric, int storage) {
  float lo = x[0], hi = x[0], smax = x[0];
  for (int64_t i = 1; i < n; ++i) {
    const float a = x[i * stride];
    lo = a < lo ? a : lo;
    hi = a > hi ? a : hi;
    if ((a < 0 ? -a : a) > (smax < 0 ? -smax : smax)) smax = a;
  }
  GsqIntParams p{0.0f, 0};
  const int maxq = (1 << bits) - 1;
  if (symmetric) {
    const int half = 1 << (bits - 1);
    p.zero = half;
    p.scale = round_storage(storage, smax / -static_cast<float>(half));
  } else {
    lo = lo < 0.0f ? lo : 0.0f;
    hi = hi > 0.0f ? hi : 0.0f;
    if (hi != lo) {
      p.scale = round_storage(storage, (hi - lo) / static_cast<float>(maxq));
      if (p.scale != 0.0f) {
        float z = round_even_clamped(-lo / p.scale);
        z = z < 0.0f ? 0.0f : z;
        z = z > static_cast<float>(maxq) ? static_cast<float>(maxq) : z;
        p.zero = static_cast<int32_t>(z);
      }
    }
  }
  // !isfinite(scale): NaN fails every comparison, Inf exceeds the largest float.
  if (!(p.scale <= 3.402823466e38f && p.scale >= -3.402823466e38f)) p.scale = 0.0f;
  return p;
}

LOWBIT_HD uint32_t gsq_encode(GsqIntParams p, int bits, float x) {
  const float maxq = static_cast<float>((1 << bits) - 1);
  if (p.scale == 0.0f) return static_cast<uint32_t>(p.zero);
  float t = round_even_clamped(x / p.scale) + static_cast<float>(p.zero);
  t = t > 0.0f ? t : 0.0f;
  t = t < maxq ? t : maxq;
  return static_cast<uint32_t>(t);
}

LOWBIT_HD float gsq_decode_value(GsqIntParams p, uint32_t q) {
  return p.scale * static_cast<float>(static_cast<int32_t>(q) - p.zero);
}

// ---------------------------------------------------------------- GPTQ driver plan

// Columns per lazy block: solver.cpp's effective_block (at least the configured size,
// aligned to the groups so that no group straddles two blocks).
LOWBIT_HD int64_t gptq_effective_block(int64_t block, int64_t group, int64_t cols) {
  if (group >= cols) return block < cols ? block : cols;
  if (group >= block) return group;
  return (block + group - 1) / group * group;
}

// What the GPU driver does for the lazy block starting at column i1, in one place so
// the CPU tests can replay it (tests/kernels/test_cuda_common.cpp):
//  - fit groups [g0, g1) on the block's starting weights (the reference fits a group
//    that starts inside a block on those; one per row, longer than a block, starts
//    only at column 0);
//  - sweep columns [i1, i2);
//  - push the block's errors onto columns i2.. with one SGEMM, in cuBLAS's column-major
//    terms C (m x n, ldc) -= A (m x k, lda) * B (k x n, ldb), where C starts at
//    c_offset of the row-major weights, A at a_offset of the row-major H^-1 factor and
//    B is the row-major error block [rows x k]. m == 0: no update (last block).
struct GptqBlockPlan {
  int64_t i1, i2, g0, g1;
  int64_t m, n, k, a_offset, lda, ldb, c_offset, ldc;
};

LOWBIT_HD GptqBlockPlan gptq_block_plan(int64_t rows, int64_t cols, int64_t group, int64_t block, int64_t i1) {
  GptqBlockPlan p{};
  p.i1 = i1;
  p.i2 = i1 + block < cols ? i1 + block : cols;
  if (i1 % group == 0 || group < block) {
    p.g0 = i1 / group;
    p.g1 = (p.i2 + group - 1) / group;
  } else {
    p.g0 = p.g1 = 0;
  }
  // Row-major W (rows x cols) is column-major W^T; W^T[i2:, :] -= Hinv[i1:i2, i2:]^T Err^T.
  p.m = cols - p.i2;
  p.n = rows;
  p.k = p.i2 - i1;
  p.a_offset = i1 * cols + p.i2;
  p.lda = cols;
  p.ldb = p.k;
  p.c_offset = p.i2;
  p.ldc = cols;
  return p;
}

// One column of one row in the in-block recursion: the code of w, its decoded value
// and the error scaled by the factor's diagonal, (w - q) / Hinv[p, p].
LOWBIT_HD float gptq_column_step(float w, GsqIntParams params, int bits, float hinv_diag, uint32_t& code, float& q) {
  code = gsq_encode(params, bits, w);
  q = gsq_decode_value(params, code);
  return (w - q) / hinv_diag;
}

}  // namespace lowbit::kernels
