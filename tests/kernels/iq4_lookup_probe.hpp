#pragma once
// Test-only entry points to the IQ4 code-book look-ups of the lane searches
// (kernels/cpu/lanes/iq4_search_lanes.hpp): Iq4Lanes<V>::nearest_value and ggml_value on
// n values, eight lanes at a time, compiled once per instruction set by
// iq4_lookup_probe.inc. The quantizer tests see these look-ups only through whole
// blocks, where a wrong tie rule can hide; test_iq4_lookup.cpp checks them value by value.
#include <cstddef>

namespace lowbit::test {

using Iq4LookupProbe = void (*)(const float* v, std::size_t n, float* nearest, float* ggml);

#if defined(__x86_64__)
// The bucketed cell tables with permute look-ups (cell_index), as the AVX2 and
// AVX-512 quantize variants compile them. Call only where the CPU runs the ISA.
void iq4_lookup_avx2(const float* v, std::size_t n, float* nearest, float* ggml);
void iq4_lookup_avx512(const float* v, std::size_t n, float* nearest, float* ggml);
#elif defined(__aarch64__)
// The path without x86 permutes, fifteen midpoint comparisons, as NEON compiles it.
void iq4_lookup_neon(const float* v, std::size_t n, float* nearest, float* ggml);
#endif

}  // namespace lowbit::test
