// AVX2 variants of the K-quants' `fast` quantizers (ggml's algorithm): eight
// sub-blocks in the eight lanes of a __m256, byte-identical to the scalar reference
// (kernels/cpu/lanes/kquants_fast_lanes.hpp says how).
#include "cpu/x86/avx2/target.hpp"  // first: checks this file's compile flags

#include <immintrin.h>

#include <cstdint>

namespace lowbit::kernels {
namespace {
typedef float V __attribute__((vector_size(32)));
typedef int32_t Vi __attribute__((vector_size(32)));
constexpr int kLanes = 8;
inline V vsqrt(V a) { return reinterpret_cast<V>(_mm256_sqrt_ps(reinterpret_cast<__m256>(a))); }
}  // namespace
}  // namespace lowbit::kernels

#define LOWBIT_FAST_ISA avx2
#include "cpu/lanes/kquants_fast_lanes.hpp"
