# ctest neon_build: configures (first run) and builds the cross-compiled AArch64
# kernel tree tests/neon inside the main build directory. Incremental: a second run
# with nothing changed only checks timestamps.
#   cmake -DSOURCE_DIR=<repo> -DBINARY_DIR=<build>/neon -DGENERATOR=<gen> -DJOBS=<n> [-DLAUNCHER=ccache] -P run_neon_build.cmake
# LAUNCHER: the main tree's compiler launcher (ccache under make), or empty.
foreach(v SOURCE_DIR BINARY_DIR GENERATOR JOBS)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "run_neon_build.cmake: ${v} is not set")
  endif()
endforeach()
if(NOT EXISTS ${BINARY_DIR}/CMakeCache.txt)
  execute_process(
    COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/neon -B ${BINARY_DIR} -G ${GENERATOR}
            -DCMAKE_TOOLCHAIN_FILE=${SOURCE_DIR}/cmake/aarch64-linux-gnu.cmake -DCMAKE_BUILD_TYPE=Release
            "-DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER}"
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    file(REMOVE ${BINARY_DIR}/CMakeCache.txt)  # configure again next time
    message(FATAL_ERROR "configuring the AArch64 kernel tree failed (${rc})")
  endif()
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BINARY_DIR} --parallel ${JOBS} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building the AArch64 kernel tree failed (${rc})")
endif()
