#pragma once
// Every file in kernels/cpu/x86/avx512vnni/ includes this first: the dispatch table
// runs these kernels on CPUs with isa::avx512vnni (AVX-512 F/BW/VL + VNNI); CMake
// compiles the folder with the matching flags (lowbit_add_isa_sources).
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512VL__) || !defined(__AVX512VNNI__)
#error "kernels/cpu/x86/avx512vnni needs -mavx512f -mavx512bw -mavx512vl -mavx512vnni"
#endif
#if defined(__AVX512BF16__)
#error "kernels/cpu/x86/avx512vnni is compiled with BF16 enabled: those kernels belong in their own folder"
#endif
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 false positives in its AVX-512 intrinsics
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
