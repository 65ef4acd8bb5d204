#pragma once
// Marks functions that CUDA kernels share with the host (block structs, fp16 math).
//
// On the host they get internal linkage (static inline), not plain inline: SIMD
// kernel files are compiled with extra ISA flags (-mavx512f ...), and an external
// inline function emitted there could be the copy the linker keeps for every caller,
// putting AVX-512 instructions into scalar code paths on CPUs without them.
#if defined(__CUDACC__)
#define LOWBIT_HD __host__ __device__ __forceinline__
#else
#define LOWBIT_HD static inline
#endif
