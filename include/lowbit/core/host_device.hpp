#pragma once
// Marks functions that CUDA kernels share with the host (block structs, fp16 math).
#if defined(__CUDACC__)
#define LOWBIT_HD __host__ __device__ __forceinline__
#else
#define LOWBIT_HD inline
#endif
