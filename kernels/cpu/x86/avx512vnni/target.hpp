#pragma once
// Every file in kernels/cpu/x86/avx512vnni/ includes this first. The dispatch table runs
// these kernels on CPUs with isa::avx512vnni (the avx512 set + AVX512_VNNI); CMake
// compiles the folder with the matching flags (lowbit_add_isa_sources).
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__) || !defined(__AVX512F__) || \
    !defined(__AVX512BW__) || !defined(__AVX512VL__) || !defined(__AVX512VNNI__)
#error "kernels/cpu/x86/avx512vnni needs -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512vnni"
#endif
#if defined(__AVX512BF16__) || defined(__AVX512VBMI__)
#error "kernels/cpu/x86/avx512vnni is compiled with features beyond isa::avx512vnni"
#endif
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*() and then trip its own
// -W(maybe-)uninitialized once inlined: known false positives, silenced for the folder.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
