# The shared library as a C program sees it:
#  1. a LOWBIT_SHARED=ON build of the library alone, kept in WORK_DIR/build between runs
#     (incremental; skipped when this build tree is itself shared),
#  2. installed into a scratch prefix,
#  3. its SONAME (liblowbit.so.<LOWBIT_ABI_VERSION>) and exports (only lowbit_* and the C++
#     namespace lowbit) checked,
#  4. tests/consumer/consumer.c compiled with nothing but `pkg-config --cflags --libs lowbit`
#     (PKG_CONFIG_PATH at the prefix) and run,
#  5. tests/consumer (C++, find_package) built and run against the same shared install.
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}")
  endif()
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${prefix} ${WORK_DIR}/c ${WORK_DIR}/cxx)
file(MAKE_DIRECTORY ${WORK_DIR}/c)

if(SHARED)
  set(lib_build ${BINARY_DIR})
else()
  set(lib_build ${WORK_DIR}/build)
  cmake_host_system_information(RESULT jobs QUERY NUMBER_OF_LOGICAL_CORES)
  # The build tree's compiler launcher (ccache under make): the library's files compile
  # with this tree's command lines, so the cache serves them.
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${lib_build} -G ${GENERATOR} -DCMAKE_BUILD_TYPE=Release
      -DCMAKE_CXX_COMPILER=${CXX_COMPILER} "-DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER}"
      -DLOWBIT_SHARED=ON -DLOWBIT_CUDA=OFF -DLOWBIT_BUILD_TESTS=OFF
      -DLOWBIT_BUILD_EXAMPLES=OFF -DLOWBIT_BUILD_BENCHMARKS=OFF)
  run(${CMAKE_COMMAND} --build ${lib_build} --target lowbit --parallel ${jobs})
endif()
run(${CMAKE_COMMAND} --install ${lib_build} --prefix ${prefix})

# pkg-config finds the library from the prefix alone.
set(ENV{PKG_CONFIG_PATH} "")
file(GLOB_RECURSE pc_files ${prefix}/*/lowbit.pc)
list(LENGTH pc_files n_pc)
if(NOT n_pc EQUAL 1)
  message(FATAL_ERROR "expected one lowbit.pc under ${prefix}, found: ${pc_files}")
endif()
get_filename_component(pc_dir ${pc_files} DIRECTORY)
set(ENV{PKG_CONFIG_PATH} ${pc_dir})
run(${PKG_CONFIG} --modversion lowbit)
message("pkg-config --modversion lowbit: ${run_output}")
run(${PKG_CONFIG} --cflags --libs lowbit)
string(STRIP "${run_output}" flags)
message("pkg-config --cflags --libs lowbit: ${flags}")
run(${PKG_CONFIG} --variable=libdir lowbit)
string(STRIP "${run_output}" libdir)

# The SONAME follows the C ABI, and only the API is exported.
file(STRINGS ${SOURCE_DIR}/include/lowbit/lowbit.h abi_line REGEX "^#define LOWBIT_ABI_VERSION [0-9]+$")
string(REGEX REPLACE ".* ([0-9]+)$" "\\1" abi "${abi_line}")
set(lib ${libdir}/liblowbit.so.${abi})
if(NOT EXISTS ${lib})
  file(GLOB found ${libdir}/liblowbit*)
  message(FATAL_ERROR "${lib} is not installed (found: ${found})")
endif()
run(${READELF} -d ${lib})
if(NOT run_output MATCHES "\\(SONAME\\)[^\n]*\\[liblowbit\\.so\\.${abi}\\]")
  message(FATAL_ERROR "SONAME of ${lib} is not liblowbit.so.${abi}:\n${run_output}")
endif()
run(${NM} -D --defined-only ${lib})
string(REPLACE "\n" ";" symbols "${run_output}")
set(bad "")
set(n_c 0)
set(n_cxx 0)
foreach(line IN LISTS symbols)
  if(line STREQUAL "")
    continue()
  endif()
  # "<address> <type> <mangled name>": C functions lowbit_*, C++ names in namespace lowbit
  # (N6lowbit) and their typeinfo, vtables, thunks, static locals and guards.
  string(REGEX REPLACE "^[0-9a-fA-F]* *[A-Za-z] " "" name "${line}")
  if(name MATCHES "^lowbit_")
    math(EXPR n_c "${n_c} + 1")
  elseif(name MATCHES "^_Z(N|NK|T[ISVTHW]N|Th[n0-9_]*N|Tv[n0-9_]*N|ZN|ZNK|GVZN|GVZNK|GVN)6lowbit")
    math(EXPR n_cxx "${n_cxx} + 1")
  else()
    list(APPEND bad "${line}")
  endif()
endforeach()
list(LENGTH bad n_bad)
if(n_bad GREATER 0)
  list(SUBLIST bad 0 20 some)
  list(JOIN some "\n  " some)
  message(FATAL_ERROR "${n_bad} symbol(s) outside the API are exported from ${lib}, e.g.:\n  ${some}")
endif()
if(n_c LESS 50 OR n_cxx LESS 50)
  message(FATAL_ERROR "too few exports from ${lib}: ${n_c} C API functions, ${n_cxx} C++ symbols")
endif()
message("${lib}: SONAME liblowbit.so.${abi}; exports ${n_c} C API symbols and ${n_cxx} C++ symbols of namespace lowbit, nothing else")

# A C99 program built with the pkg-config flags only.
separate_arguments(flag_list UNIX_COMMAND "${flags}")
run(${C_COMPILER} -std=c99 -Wall -Wextra -Werror -pedantic ${SOURCE_DIR}/tests/consumer/consumer.c
    -o ${WORK_DIR}/c/consumer ${flag_list} -lm)
set(ENV{LD_LIBRARY_PATH} "${libdir}")
run(${WORK_DIR}/c/consumer ${WORK_DIR}/c/consumer.gguf)
message("${run_output}")

# The C++ API through the CMake package, linked against the same shared library.
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer -B ${WORK_DIR}/cxx -G ${GENERATOR}
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_PREFIX_PATH=${prefix})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/cxx)
run(${WORK_DIR}/cxx/consumer)
message("${run_output}")
