#pragma once
// Every file in kernels/cpu/arm/neon/ includes this first. The dispatch table runs
// these kernels on every AArch64 CPU (isa::neon: Advanced SIMD is mandatory there);
// CMake compiles the folder with -march=armv8-a (cmake/LowbitArmKernels.cmake). Extra
// extensions leaking in (say -march=native on a dotprod core) would let the compiler
// emit instructions that fault on the plainest cores, so they fail the build here.
#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "kernels/cpu/arm/neon needs an AArch64 target with Advanced SIMD"
#endif
#if defined(__ARM_FEATURE_DOTPROD) || defined(__ARM_FEATURE_MATMUL_INT8) || defined(__ARM_FEATURE_SVE)
#error "kernels/cpu/arm/neon is compiled with extensions beyond ARMv8-A: these kernels would fault on plain cores"
#endif
