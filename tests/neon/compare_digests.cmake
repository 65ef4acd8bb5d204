# ctest neon_same_bytes_as_host: the digests of the scalar references' output
# (tests/neon/quantize_digest.cpp) on this host and under qemu-aarch64 must be equal,
# line for line.
#   cmake -DHOST=<host binary> -DQEMU=<qemu-aarch64> -DSYSROOT=<arm64 sysroot> -DTARGET=<aarch64 binary> -P compare_digests.cmake
execute_process(COMMAND ${HOST} OUTPUT_VARIABLE host RESULT_VARIABLE rc_host)
execute_process(COMMAND ${QEMU} -L ${SYSROOT} -cpu max ${TARGET} OUTPUT_VARIABLE arm RESULT_VARIABLE rc_arm)
if(NOT rc_host EQUAL 0 OR NOT rc_arm EQUAL 0)
  message(FATAL_ERROR "quantize_digest failed: host ${rc_host}, aarch64 ${rc_arm}")
endif()
string(REPLACE "\n" ";" host_lines "${host}")
string(REPLACE "\n" ";" arm_lines "${arm}")
list(LENGTH host_lines n)
if(n LESS 50)
  message(FATAL_ERROR "quantize_digest printed only ${n} lines on the host:\n${host}")
endif()
set(diffs "")
foreach(line IN LISTS host_lines)
  list(FIND arm_lines "${line}" found)
  if(found EQUAL -1)
    string(APPEND diffs "  host ${line}\n")
  endif()
endforeach()
if(NOT host STREQUAL arm)
  message(FATAL_ERROR "the scalar references' bytes differ between this host and AArch64:\n${diffs}"
                      "host:\n${host}\naarch64:\n${arm}")
endif()
message(STATUS "${n} digests equal on the host and under qemu-aarch64")
