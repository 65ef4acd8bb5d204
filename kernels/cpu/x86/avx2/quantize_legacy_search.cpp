// AVX2 variants of the Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 standard-effort search: one
// block per vector lane, byte-identical to the scalar reference
// (kernels/cpu/lanes/legacy_search_lanes.hpp says how).
#include "cpu/x86/avx2/target.hpp"  // first: checks this file's compile flags

// Vectors wider than the ISA's registers change the calling convention; nothing here
// has external linkage, so it never matters.
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

#include "cpu/lanes/legacy_search_lanes.hpp"
#include "lists/declarations.hpp"

namespace lowbit::kernels {

void quantize_row_q4_0__avx2(const float* x, void* y, int64_t n, const float* importance) {
  sym_row_lanes<V, block_q4_0>(x, y, n, importance, kQ4_0Search, store_q4_0);
}

void quantize_row_q4_1__avx2(const float* x, void* y, int64_t n, const float* importance) {
  asym_row_lanes<V, block_q4_1>(x, y, n, importance, 15, store_q4_1);
}

void quantize_row_q5_1__avx2(const float* x, void* y, int64_t n, const float* importance) {
  asym_row_lanes<V, block_q5_1>(x, y, n, importance, 31, store_q5_1);
}

void quantize_row_q5_0__avx2(const float* x, void* y, int64_t n, const float* importance) {
  sym_row_lanes<V, block_q5_0>(x, y, n, importance, kQ5_0Search, store_q5_0);
}

void quantize_row_q8_0__avx2(const float* x, void* y, int64_t n, const float* importance) {
  sym_row_lanes<V, block_q8_0>(x, y, n, importance, kQ8Search, store_q8_0);
}

}  // namespace lowbit::kernels
