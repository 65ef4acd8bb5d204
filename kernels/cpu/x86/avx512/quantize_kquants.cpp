// AVX-512 variants of the K-quants' `fast` quantizers (ggml's algorithm): sixteen
// sub-blocks (one Q2_K/Q3_K/Q6_K super-block, two of Q4_K/Q5_K) in the lanes of a
// __m512, byte-identical to the scalar reference
// (kernels/cpu/lanes/kquants_fast_lanes.hpp says how).
#include "cpu/x86/avx512/target.hpp"  // first: checks this file's compile flags

#include <immintrin.h>

#include <cstdint>

namespace lowbit::kernels {
namespace {
typedef float V __attribute__((vector_size(64)));
typedef int32_t Vi __attribute__((vector_size(64)));
constexpr int kLanes = 16;
inline V vsqrt(V a) { return reinterpret_cast<V>(_mm512_sqrt_ps(reinterpret_cast<__m512>(a))); }
}  // namespace
}  // namespace lowbit::kernels

#define LOWBIT_FAST_ISA avx512
#include "cpu/lanes/kquants_fast_lanes.hpp"
