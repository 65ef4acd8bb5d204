// NEON variants of the standard-effort searches of Q2_K..Q6_K (sub-blocks in lanes)
// and Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (blocks in lanes), byte-identical to the scalar references.
// The lane code is the x86 variants' (kernels/cpu/lanes/), written with GCC vector
// types: eight float lanes, which the compiler keeps in pairs of 128-bit registers.
#include "cpu/arm/neon/target.hpp"  // first: checks this file's compile flags

#include <cstdint>

namespace lowbit::kernels {
namespace {
typedef float V __attribute__((vector_size(32)));
typedef int32_t Vi __attribute__((vector_size(32)));
typedef double Vd __attribute__((vector_size(64)));
typedef int64_t Vdi __attribute__((vector_size(64)));
}  // namespace
}  // namespace lowbit::kernels

#include "cpu/lanes/kquants_low_lanes.hpp"
#include "cpu/lanes/kquants_search_lanes.hpp"
#include "cpu/lanes/legacy_search_lanes.hpp"
#include "cpu/reference/ggml_candidate.hpp"
#include "lists/declarations.hpp"

namespace lowbit::kernels {

void quantize_row_q2_K__neon(const float* x, void* y, int64_t n, const float* importance) {
  quantize_q2_K_row<LaneLowOps<V>>(x, y, n, importance);
  keep_ggml_where_better(Format::Q2_K, x, y, n, importance, sizeof(block_q2_K));
}

void quantize_row_q3_K__neon(const float* x, void* y, int64_t n, const float* importance) {
  quantize_q3_K_row<LaneLowOps<V>>(x, y, n, importance);
  keep_ggml_where_better(Format::Q3_K, x, y, n, importance, sizeof(block_q3_K));
}

void quantize_row_q4_K__neon(const float* x, void* y, int64_t n, const float* importance) {
  quantize_affine_row<15, LaneAffineOps<15>>(x, n, importance, store_q4_K, y, sizeof(block_q4_K));
  keep_ggml_where_better(Format::Q4_K, x, y, n, importance, sizeof(block_q4_K));
}

void quantize_row_q5_K__neon(const float* x, void* y, int64_t n, const float* importance) {
  quantize_affine_row<31, LaneAffineOps<31>>(x, n, importance, store_q5_K, y, sizeof(block_q5_K));
  keep_ggml_where_better(Format::Q5_K, x, y, n, importance, sizeof(block_q5_K));
}

void quantize_row_q6_K__neon(const float* x, void* y, int64_t n, const float* importance) {
  quantize_q6_K_row<LaneSymOps<V>>(x, y, n, importance);
  keep_ggml_where_better(Format::Q6_K, x, y, n, importance, sizeof(block_q6_K));
}

void quantize_row_q4_0__neon(const float* x, void* y, int64_t n, const float* importance) {
  sym_row_lanes<V, block_q4_0>(x, y, n, importance, kQ4_0Search, store_q4_0);
}

void quantize_row_q4_1__neon(const float* x, void* y, int64_t n, const float* importance) {
  asym_row_lanes<V, block_q4_1>(x, y, n, importance, 15, store_q4_1);
}

void quantize_row_q5_1__neon(const float* x, void* y, int64_t n, const float* importance) {
  asym_row_lanes<V, block_q5_1>(x, y, n, importance, 31, store_q5_1);
}

void quantize_row_q5_0__neon(const float* x, void* y, int64_t n, const float* importance) {
  sym_row_lanes<V, block_q5_0>(x, y, n, importance, kQ5_0Search, store_q5_0);
}

void quantize_row_q8_0__neon(const float* x, void* y, int64_t n, const float* importance) {
  sym_row_lanes<V, block_q8_0>(x, y, n, importance, kQ8Search, store_q8_0);
}

}  // namespace lowbit::kernels
