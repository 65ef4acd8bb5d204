cmake_minimum_required(VERSION 3.22)  # string(JSON)

# `lowbit bench --json` on small shapes: every family reports its measurements with
# the documented keys, positive values, and a ceiling where the family has one; bad
# command lines exit 2.
#   cmake -DLOWBIT=<lowbit> -P run_bench_smoke.cmake

execute_process(COMMAND ${LOWBIT} bench --format Q4_K,q8_0,F16 --rows 96 --cols 512 --batch 1,12
                        --footprint 1M --min-time 0.01 --threads 2 --json
                RESULT_VARIABLE rc OUTPUT_VARIABLE json ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "lowbit bench exited with ${rc}\n${err}")
endif()
string(JSON n LENGTH "${json}")
set(seen "")
math(EXPR last "${n} - 1")
foreach(i RANGE ${last})
  string(JSON entry GET "${json}" ${i})
  foreach(key family format variant threads rows cols batch footprint value unit)
    string(JSON v ERROR_VARIABLE missing GET "${entry}" ${key})
    if(missing)
      message(FATAL_ERROR "entry ${i} lacks '${key}': ${entry}")
    endif()
  endforeach()
  string(JSON family GET "${entry}" family)
  string(JSON format GET "${entry}" format)
  string(JSON value GET "${entry}" value)
  string(JSON threads GET "${entry}" threads)
  if(NOT value GREATER 0 OR NOT threads EQUAL 2)
    message(FATAL_ERROR "entry ${i}: value ${value}, threads ${threads}: ${entry}")
  endif()
  if(NOT family STREQUAL "quantize")
    string(JSON ceiling ERROR_VARIABLE missing GET "${entry}" ceiling)
    if(missing OR NOT ceiling GREATER 0)
      message(FATAL_ERROR "entry ${i} (${family}) has no positive ceiling: ${entry}")
    endif()
  else()
    string(JSON rmse GET "${entry}" rmse)
    if(NOT rmse GREATER 0 OR NOT rmse LESS 0.2)
      message(FATAL_ERROR "entry ${i}: quantize rmse ${rmse}: ${entry}")
    endif()
  endif()
  list(APPEND seen "${family}/${format}")
endforeach()
# gemv and gemm at both batches for the three formats, dequantize for the three, the
# one activation format asked for (Q8_0), quantize for Q4_K and Q8_0 (F16 is no block format).
foreach(want gemv/Q4_K gemv/Q8_0 gemv/F16 gemm/Q4_K gemm/F16 dequantize/Q4_K dequantize/F16 activations/Q8_0
             quantize/Q4_K quantize/Q8_0)
  if(NOT want IN_LIST seen)
    message(FATAL_ERROR "no ${want} measurement in: ${seen}")
  endif()
endforeach()
list(LENGTH seen count)
if(NOT count EQUAL 18)
  message(FATAL_ERROR "expected 18 measurements (gemv and gemm at two batches each), got ${count}: ${seen}")
endif()

foreach(bad "--family;nope" "--format;Q9_X" "--rows;0" "--footprint;12Q" "--min-time;-1")
  execute_process(COMMAND ${LOWBIT} bench ${bad} RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(NOT rc EQUAL 2 OR NOT err MATCHES "error")
    message(FATAL_ERROR "`lowbit bench ${bad}` exited with ${rc}: ${err}")
  endif()
endforeach()
