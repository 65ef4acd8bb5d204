#pragma once
// Every file in kernels/cpu/x86/avx512/ includes this first. The dispatch table runs
// these kernels on CPUs with isa::avx512 (AVX2 + FMA + F16C + AVX-512 F/BW/VL); CMake
// compiles the folder with the matching flags (lowbit_add_isa_sources).
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__) || !defined(__AVX512F__) || \
    !defined(__AVX512BW__) || !defined(__AVX512VL__)
#error "kernels/cpu/x86/avx512 needs -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl"
#endif
#if defined(__AVX512VNNI__) || defined(__AVX512BF16__)
#error "kernels/cpu/x86/avx512 is compiled with VNNI or BF16 enabled: those kernels belong in their own folder"
#endif

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*() and then trip its own
// -W(maybe-)uninitialized once inlined: known false positives, silenced for the folder.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
