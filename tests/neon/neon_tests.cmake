# The `neon` ctest label (included from tests/CMakeLists.txt): the kernel layer and its
# generated variant tests cross-compiled for AArch64 (tests/neon, built inside this
# build directory by the neon_build fixture) and run under qemu-user on three emulated
# CPUs, each with the features it should be detected with:
#   max         every extension qemu emulates: neon + dotprod + i8mm; all variant tests,
#               and LegacyEffort's variant identity on its degenerate blocks (its
#               other tests check the references, which the host runs)
#   cortex-a76  ARMv8.2 with dotprod, no i8mm; the detection and dispatch checks
#   cortex-a53  plain ARMv8.0 Advanced SIMD; the detection and dispatch checks
# and compares the scalar references' bytes on AArch64 with this host's.
# `make deps` installs the cross compiler and qemu (scripts/install-deps.sh); without
# them the label holds one test that says so and is reported as skipped.
find_program(LOWBIT_AARCH64_CXX NAMES aarch64-linux-gnu-g++)
find_program(LOWBIT_QEMU_AARCH64 NAMES qemu-aarch64)
set(LOWBIT_AARCH64_SYSROOT /usr/aarch64-linux-gnu CACHE PATH "The arm64 sysroot of Debian's cross toolchain")
set(LOWBIT_NEON_JOBS 2 CACHE STRING "Parallel jobs for the AArch64 kernel tree's build")
if(LOWBIT_AARCH64_CXX AND LOWBIT_QEMU_AARCH64 AND EXISTS /usr/src/googletest/CMakeLists.txt)
  set(_neon_dir ${PROJECT_BINARY_DIR}/neon)
  add_test(NAME neon_build
    COMMAND ${CMAKE_COMMAND} -DSOURCE_DIR=${PROJECT_SOURCE_DIR} -DBINARY_DIR=${_neon_dir}
      -DGENERATOR=${CMAKE_GENERATOR} -DJOBS=${LOWBIT_NEON_JOBS} "-DLAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER}"
      -P ${CMAKE_CURRENT_LIST_DIR}/run_neon_build.cmake)
  set_tests_properties(neon_build PROPERTIES LABELS neon FIXTURES_SETUP lowbit_neon TIMEOUT 1200)
  # The scalar references write the same bytes on AArch64 as on this host (every
  # quantizer, decoder and activation quantizer, digested by tests/neon/quantize_digest.cpp).
  add_executable(neon_quantize_digest_host ${CMAKE_CURRENT_LIST_DIR}/quantize_digest.cpp)
  target_link_libraries(neon_quantize_digest_host PRIVATE lowbit::lowbit)
  add_test(NAME neon_same_bytes_as_host
    COMMAND ${CMAKE_COMMAND} -DHOST=$<TARGET_FILE:neon_quantize_digest_host> -DQEMU=${LOWBIT_QEMU_AARCH64}
      -DSYSROOT=${LOWBIT_AARCH64_SYSROOT} -DTARGET=${_neon_dir}/quantize_digest
      -P ${CMAKE_CURRENT_LIST_DIR}/compare_digests.cmake)
  set_tests_properties(neon_same_bytes_as_host PROPERTIES LABELS neon FIXTURES_REQUIRED lowbit_neon TIMEOUT 600)
  foreach(_cpu max cortex-a76 cortex-a53)
    if(_cpu STREQUAL "max")
      set(_features neon+dotprod+i8mm)
      set(_filter "-LegacyEffort.NeverWorseThanGgml:LegacyEffort.SameBytesOnAnyThreadCount:LegacyEffort.OnGridIsExact")
    elseif(_cpu STREQUAL "cortex-a76")
      set(_features neon+dotprod)
      set(_filter "ArmDispatch.*")
    else()
      set(_features neon)
      set(_filter "ArmDispatch.*")
    endif()
    add_test(NAME neon_kernels_${_cpu}
      COMMAND ${LOWBIT_QEMU_AARCH64} -L ${LOWBIT_AARCH64_SYSROOT} -cpu ${_cpu} ${_neon_dir}/neon_kernels
              --gtest_filter=${_filter})
    set_tests_properties(neon_kernels_${_cpu} PROPERTIES LABELS neon FIXTURES_REQUIRED lowbit_neon TIMEOUT 600
      ENVIRONMENT "LOWBIT_EXPECT_FEATURES=${_features}")
  endforeach()
else()
  add_test(NAME neon_kernels
    COMMAND ${CMAKE_COMMAND} -E echo "lowbit: SKIPPED: the NEON kernel tests need aarch64-linux-gnu-g++, qemu-aarch64 \
and /usr/src/googletest (make deps installs g++-aarch64-linux-gnu, qemu-user and googletest)")
  set_tests_properties(neon_kernels PROPERTIES LABELS neon SKIP_REGULAR_EXPRESSION "SKIPPED")
  message(WARNING "lowbit: the neon tests are skipped: install g++-aarch64-linux-gnu and qemu-user (make deps)")
endif()
