// AVX-512 variants of the standard-effort searches of Q2_K..Q6_K (sub-blocks in lanes)
// and Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (blocks in lanes), byte-identical to the scalar
// references: the lane code of kernels/cpu/lanes/ (docs/kernels.md, "The quantizers'
// searches in lanes"), with sixteen lanes in a 512-bit register (the Q4_K/Q5_K
// search's eight in a 256-bit one).
#include "cpu/x86/avx512/target.hpp"  // first: checks this file's compile flags

#define LOWBIT_SEARCH_ISA avx512
#define LOWBIT_SEARCH_WIDE W
#include "cpu/lanes/search_variants.hpp"
