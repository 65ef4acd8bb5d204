// AVX-512 variants of the K-quants' standard-effort searches (Q2_K .. Q6_K): the
// sub-blocks of a super-block in vector lanes, byte-identical to the scalar reference
// (kernels/cpu/lanes/kquants_search_lanes.hpp says how).
#include "cpu/x86/avx512/target.hpp"  // first: checks this file's compile flags

// Vectors wider than the ISA's registers (Q6_K's sixteen lanes of doubles) change
// the calling convention; nothing here has external linkage, so it never matters.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

#include <cstdint>

namespace lowbit::kernels {
namespace {
typedef float V __attribute__((vector_size(32)));
typedef int32_t Vi __attribute__((vector_size(32)));
typedef double Vd __attribute__((vector_size(64)));
typedef int64_t Vdi __attribute__((vector_size(64)));
}  // namespace
}  // namespace lowbit::kernels

#include "cpu/reference/ggml_candidate.hpp"
#include "cpu/lanes/kquants_low_lanes.hpp"
#include "cpu/lanes/kquants_search_lanes.hpp"
#include "lists/declarations.hpp"

namespace lowbit::kernels {

void quantize_row_q2_K__avx512(const float* x, void* y, int64_t n, const float* importance) {
  quantize_q2_K_row<LaneLowOps<W>>(x, y, n, importance);
  keep_ggml_where_better(Format::Q2_K, x, y, n, importance, sizeof(block_q2_K));
}

void quantize_row_q3_K__avx512(const float* x, void* y, int64_t n, const float* importance) {
  quantize_q3_K_row<LaneLowOps<W>>(x, y, n, importance);
  keep_ggml_where_better(Format::Q3_K, x, y, n, importance, sizeof(block_q3_K));
}

void quantize_row_q4_K__avx512(const float* x, void* y, int64_t n, const float* importance) {
  quantize_affine_row<15, LaneAffineOps<15>>(x, n, importance, store_q4_K, y, sizeof(block_q4_K));
  keep_ggml_where_better(Format::Q4_K, x, y, n, importance, sizeof(block_q4_K));
}

void quantize_row_q5_K__avx512(const float* x, void* y, int64_t n, const float* importance) {
  quantize_affine_row<31, LaneAffineOps<31>>(x, n, importance, store_q5_K, y, sizeof(block_q5_K));
  keep_ggml_where_better(Format::Q5_K, x, y, n, importance, sizeof(block_q5_K));
}

void quantize_row_q6_K__avx512(const float* x, void* y, int64_t n, const float* importance) {
  quantize_q6_K_row<LaneSymOps<W>>(x, y, n, importance);
  keep_ggml_where_better(Format::Q6_K, x, y, n, importance, sizeof(block_q6_K));
}

}  // namespace lowbit::kernels
