#pragma once
// Every file in kernels/cpu/arm/dotprod/ includes this first. The dispatch table runs
// these kernels on CPUs with isa::dotprod (Advanced SIMD + SDOT/UDOT, HWCAP_ASIMDDP);
// CMake compiles the folder with -march=armv8.2-a+dotprod (cmake/LowbitArmKernels.cmake).
// A mismatch either way is a build error here rather than a wrong answer or an
// illegal instruction at run time.
#if !defined(__aarch64__) || !defined(__ARM_NEON) || !defined(__ARM_FEATURE_DOTPROD)
#error "kernels/cpu/arm/dotprod needs -march=armv8.2-a+dotprod (see cmake/LowbitArmKernels.cmake)"
#endif
#if defined(__ARM_FEATURE_MATMUL_INT8) || defined(__ARM_FEATURE_SVE)
#error "kernels/cpu/arm/dotprod is compiled with i8mm or SVE enabled: these kernels would fault on dotprod-only cores"
#endif
