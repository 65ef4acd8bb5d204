#pragma once
// Every file in kernels/cpu/arm/i8mm/ includes this first. The dispatch table runs
// these kernels on CPUs with isa::i8mm (Advanced SIMD + SDOT + SMMLA/USMMLA,
// HWCAP_ASIMDDP and HWCAP2_I8MM); CMake compiles the folder with
// -march=armv8.2-a+dotprod+i8mm (cmake/LowbitArmKernels.cmake). A mismatch either way
// is a build error here rather than a wrong answer or an illegal instruction.
#if !defined(__aarch64__) || !defined(__ARM_NEON) || !defined(__ARM_FEATURE_DOTPROD) || \
    !defined(__ARM_FEATURE_MATMUL_INT8)
#error "kernels/cpu/arm/i8mm needs -march=armv8.2-a+dotprod+i8mm (see cmake/LowbitArmKernels.cmake)"
#endif
#if defined(__ARM_FEATURE_SVE)
#error "kernels/cpu/arm/i8mm is compiled with SVE enabled: these kernels would fault on cores without it"
#endif
