# lowbit_add_arm_kernels(<target>)
#
# The AArch64 kernel folders, one lowbit_add_isa_sources call per ISA (flags and
# LOWBIT_ISA_<NAME> macro, see LowbitIsaSources.cmake). Shared by the library
# (CMakeLists.txt, on an aarch64 host or toolchain) and the cross-compiled kernel
# test tree (tests/neon), so both build the same files with the same flags.
#   neon     Advanced SIMD, mandatory in ARMv8-A: the baseline -march=armv8-a
#   dotprod  + SDOT/UDOT (FEAT_DotProd, HWCAP_ASIMDDP); GCC 12 offers vdotq_s32 only with
#            armv8.2-a, whose other additions (LSE atomics, SQRDMLAH) these kernels do
#            not use
#   i8mm     + SMMLA/USMMLA/USDOT (FEAT_I8MM, HWCAP2_I8MM); every i8mm core has dotprod,
#            which the flags enable too (isa::i8mm includes isa::dotprod)
include(LowbitIsaSources)
set(_lowbit_arm_root ${CMAKE_CURRENT_LIST_DIR}/..)

function(lowbit_add_arm_kernels target)
  set(_k ${_lowbit_arm_root}/kernels/cpu/arm)
  lowbit_add_isa_sources(${target} neon
    FLAGS -march=armv8-a
    FILES ${_k}/neon/activations.cpp
          ${_k}/neon/dequantize_float.cpp
          ${_k}/neon/dequantize_legacy.cpp
          ${_k}/neon/dequantize_kquants.cpp
          ${_k}/neon/dot.cpp
          ${_k}/neon/gsq_dequantize.cpp
          ${_k}/neon/gsq_gemv.cpp
          ${_k}/neon/gsq_gemv_q8.cpp
          ${_k}/neon/gsq_search.cpp
          ${_k}/neon/packed_gemm.cpp
          ${_k}/neon/quantize_kquants.cpp
          ${_k}/neon/quantize_legacy.cpp
          ${_k}/neon/quantize_search.cpp)
  lowbit_add_isa_sources(${target} dotprod
    FLAGS -march=armv8.2-a+dotprod
    FILES ${_k}/dotprod/dot.cpp
          ${_k}/dotprod/gsq_gemv_q8.cpp
          ${_k}/dotprod/packed_gemm.cpp)
  lowbit_add_isa_sources(${target} i8mm
    FLAGS -march=armv8.2-a+dotprod+i8mm
    FILES ${_k}/i8mm/packed_gemm.cpp)
endfunction()
