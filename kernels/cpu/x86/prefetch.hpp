#pragma once
// Software prefetch of weights streamed from memory, shared by the x86 GEMV kernels
// (the 32-element dots of dot32.hpp, the VNNI and AVX2 Q4_K/Q5_K/Q6_K dots, the AVX-512
// float dots, the GSQ x Q8_0 VNNI GEMV). Internal linkage: each including file compiles its own copy
// with its own ISA flags.
#include <immintrin.h>

#include <cstddef>

namespace lowbit::kernels {
namespace {
namespace x86_prefetch {

// Kernels that compute faster than one core reads memory prefetch their weights this
// far ahead into L2: the hardware prefetcher alone kept too few lines in flight
// (multi-row Q4_0 from memory on Zen 4, one thread: 14-17 GB/s without, 20-24 with
// 16 KiB into L2; 8 KiB, 32 KiB or into L1 were slower). Compute-bound kernels (Q2_K,
// Q3_K, IQ4_XS, below the read ceiling even in cache) do not: the prefetches only cost
// them issue slots (Q2_K 13.2-13.7 -> 9.7-11.8 GB/s). docs/benchmarks.md has the
// measurements.
constexpr size_t kPrefetchBytes = 16384;

// Only rows of at least this many bytes are prefetched. On shorter rows the same
// prefetch made things worse, measured from memory on Zen 4 (one thread): the
// multi-row Q4_1 kernel at 576 columns (360-byte rows, SmolLM2's width) 17 -> 9 GB/s,
// Q8_0 at 576 columns (612 bytes) 18 -> 10.5; at 1536 columns (960 bytes) it was
// neutral, from 2304-byte rows (4096 columns) up it gained 25-40%. Why short rows
// suffer was not diagnosed (this VM exposes no hardware counters).
constexpr size_t kPrefetchMinRowBytes = 2048;
inline bool worth_prefetching(size_t row_bytes) { return row_bytes >= kPrefetchMinRowBytes; }

// Prefetches the cache lines of `bytes` bytes at p + kPrefetchBytes.
template <size_t bytes>
inline void prefetch_ahead(const void* p) {
  const char* c = static_cast<const char*>(p) + kPrefetchBytes;
  for (size_t o = 0; o < bytes; o += 64) _mm_prefetch(c + o, _MM_HINT_T1);
}

}  // namespace x86_prefetch
}  // namespace
}  // namespace lowbit::kernels
