#pragma once
// Every file in kernels/cpu/x86/avx2/ includes this first. The dispatch table runs
// these kernels on CPUs with isa::avx2 (AVX2 + FMA + F16C); CMake compiles the folder
// with the matching flags (lowbit_add_isa_sources). A mismatch either way is a build
// error here rather than a wrong answer or an illegal instruction at run time.
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "kernels/cpu/x86/avx2 needs -mavx2 -mfma -mf16c (see lowbit_add_isa_sources in CMakeLists.txt)"
#endif
#if defined(__AVX512F__)
#error "kernels/cpu/x86/avx2 is compiled with AVX-512 enabled: these kernels would fault on AVX2-only CPUs"
#endif
