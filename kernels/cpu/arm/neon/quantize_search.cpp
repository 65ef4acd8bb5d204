// NEON variants of the standard-effort searches of Q2_K..Q6_K (sub-blocks in lanes)
// and Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (blocks in lanes), byte-identical to the scalar
// references: the lane code of kernels/cpu/lanes/ (docs/kernels.md, "The quantizers'
// searches in lanes"), with eight float lanes, which the compiler keeps in pairs of
// 128-bit registers.
#include "cpu/arm/neon/target.hpp"  // first: checks this file's compile flags

#define LOWBIT_SEARCH_ISA neon
#define LOWBIT_SEARCH_WIDE V
#include "cpu/lanes/search_variants.hpp"
