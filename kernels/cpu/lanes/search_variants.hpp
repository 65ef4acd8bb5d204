#pragma once
// The exported quantize kernels of one ISA's lane searches: every `standard`/`best`
// row function that kernels/lists/quantize.inc registers for the ISA, written once.
// The including file (kernels/cpu/<arch>/<isa>/quantize_search.cpp) includes its
// folder's target.hpp first and defines, before including this header:
//   LOWBIT_SEARCH_ISA    the ISA suffix of the function names (avx2, avx512, neon)
//   LOWBIT_SEARCH_WIDE   the lane type of the sixteen-lane searches (Q2_K, Q3_K, Q6_K
//                        sub-blocks; the 32-element formats' blocks): W where the ISA
//                        has 512-bit registers, else V
#include <cstdint>

// Vectors wider than the ISA's registers change the calling convention; nothing here
// but the row functions has external linkage, so it never matters. The reference
// headers' helpers that the lane code replaces go unused here (clang says so).
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wunneeded-internal-declaration"
#endif

// The lane types of search_lanes.hpp: eight float lanes and their int32, double and
// int64 companions, the same GCC vector types on every ISA.
namespace lowbit::kernels {
namespace {
typedef float V __attribute__((vector_size(32)));
typedef int32_t Vi __attribute__((vector_size(32)));
typedef double Vd __attribute__((vector_size(64)));
typedef int64_t Vdi __attribute__((vector_size(64)));
}  // namespace
}  // namespace lowbit::kernels

#include "cpu/lanes/iq4_search_lanes.hpp"
#include "cpu/lanes/kquants_low_lanes.hpp"
#include "cpu/lanes/kquants_search_lanes.hpp"
#include "cpu/lanes/legacy_search_lanes.hpp"
#include "cpu/reference/ggml_candidate.hpp"
#include "lists/declarations.hpp"

#define LOWBIT_SEARCH_NAME_(name, isa) name##__##isa
#define LOWBIT_SEARCH_NAME(name, isa) LOWBIT_SEARCH_NAME_(name, isa)
#define LOWBIT_SEARCH_FN(name) \
  void LOWBIT_SEARCH_NAME(name, LOWBIT_SEARCH_ISA)(const float* x, void* y, int64_t n, const float* importance)

namespace lowbit::kernels {

LOWBIT_SEARCH_FN(quantize_row_q2_K) {
  quantize_q2_K_row<LaneLowOps<LOWBIT_SEARCH_WIDE>>(x, y, n, importance);
  keep_ggml_where_better(Format::Q2_K, x, y, n, importance, sizeof(block_q2_K));
}
LOWBIT_SEARCH_FN(quantize_row_q2_K_best) {
  quantize_q2_K_row<LaneLowOps<LOWBIT_SEARCH_WIDE>>(x, y, n, importance, kQ2Best);
  keep_ggml_where_better(Format::Q2_K, x, y, n, importance, sizeof(block_q2_K));
}
LOWBIT_SEARCH_FN(quantize_row_q3_K) {
  quantize_q3_K_row<LaneLowOps<LOWBIT_SEARCH_WIDE>>(x, y, n, importance);
  keep_ggml_where_better(Format::Q3_K, x, y, n, importance, sizeof(block_q3_K));
}
LOWBIT_SEARCH_FN(quantize_row_q4_K) {
  quantize_affine_row<15, LaneAffineOps<15>>(x, n, importance, store_q4_K, y, sizeof(block_q4_K));
  keep_ggml_where_better(Format::Q4_K, x, y, n, importance, sizeof(block_q4_K));
}
LOWBIT_SEARCH_FN(quantize_row_q5_K) {
  quantize_affine_row<31, LaneAffineOps<31>>(x, n, importance, store_q5_K, y, sizeof(block_q5_K));
  keep_ggml_where_better(Format::Q5_K, x, y, n, importance, sizeof(block_q5_K));
}
LOWBIT_SEARCH_FN(quantize_row_q6_K) {
  quantize_q6_K_row<LaneSymOps<LOWBIT_SEARCH_WIDE>>(x, y, n, importance);
  keep_ggml_where_better(Format::Q6_K, x, y, n, importance, sizeof(block_q6_K));
}

LOWBIT_SEARCH_FN(quantize_row_q4_0) {
  sym_row_lanes<LOWBIT_SEARCH_WIDE, block_q4_0>(x, y, n, importance, kQ4_0Search, store_q4_0);
}
LOWBIT_SEARCH_FN(quantize_row_q5_0) {
  sym_row_lanes<LOWBIT_SEARCH_WIDE, block_q5_0>(x, y, n, importance, kQ5_0Search, store_q5_0);
}
LOWBIT_SEARCH_FN(quantize_row_q4_0_best) {
  sym_row_lanes<LOWBIT_SEARCH_WIDE, block_q4_0>(x, y, n, importance, kQ4_0SearchBest, store_q4_0);
}
LOWBIT_SEARCH_FN(quantize_row_q5_0_best) {
  sym_row_lanes<LOWBIT_SEARCH_WIDE, block_q5_0>(x, y, n, importance, kQ5_0SearchBest, store_q5_0);
}
LOWBIT_SEARCH_FN(quantize_row_q8_0) {
  sym_row_lanes<LOWBIT_SEARCH_WIDE, block_q8_0>(x, y, n, importance, kQ8Search, store_q8_0);
}
LOWBIT_SEARCH_FN(quantize_row_q4_1) {
  asym_row_lanes<LOWBIT_SEARCH_WIDE, block_q4_1>(x, y, n, importance, 15, store_q4_1, kAsymDefault);
}
LOWBIT_SEARCH_FN(quantize_row_q5_1) {
  asym_row_lanes<LOWBIT_SEARCH_WIDE, block_q5_1>(x, y, n, importance, 31, store_q5_1, kAsymDefault);
}
LOWBIT_SEARCH_FN(quantize_row_q4_1_best) {
  asym_row_lanes<LOWBIT_SEARCH_WIDE, block_q4_1>(x, y, n, importance, 15, store_q4_1, kAsymBest);
}
LOWBIT_SEARCH_FN(quantize_row_q5_1_best) {
  asym_row_lanes<LOWBIT_SEARCH_WIDE, block_q5_1>(x, y, n, importance, 31, store_q5_1, kAsymBest);
}


#if defined(__AVX2__)
// IQ4_NL and IQ4_XS look their code values up with 256-bit permutes (cell_index in
// iq4_search_lanes.hpp): eight lanes on every x86 ISA. Without them (NEON) each value
// takes fifteen comparisons, slower than the scalar table look-up, so there is no
// variant.
LOWBIT_SEARCH_FN(quantize_row_iq4_nl) { iq4_nl_row_lanes<V>(x, y, n, importance); }
LOWBIT_SEARCH_FN(quantize_row_iq4_xs) { quantize_iq4_xs_row<LaneXsOps>(x, y, n, importance); }
#endif

}  // namespace lowbit::kernels

#undef LOWBIT_SEARCH_FN
#undef LOWBIT_SEARCH_NAME
#undef LOWBIT_SEARCH_NAME_
