cmake_minimum_required(VERSION 3.22)  # string(JSON), IN_LIST

# End-to-end smoke test of the lowbit tool on a tiny synthetic model:
#   cmake -DLOWBIT=<lowbit> -DMAKE_MODEL=<make_tiny_model> -DWORK_DIR=<dir> -P run_cli_smoke.cmake
# quantize to Q4_K_M (with an imatrix), check the tensor types with inspect --json,
# check the errors with compare --json, then GPTQ and GSQ runs and the exit statuses
# of bad command lines and bad files.

function(run)  # run(<expected exit status> <output variable> args...)
  set(expected ${ARGV0})
  set(out_var ${ARGV1})
  list(SUBLIST ARGV 2 -1 cmd)
  execute_process(COMMAND ${cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL expected)
    message(FATAL_ERROR "`${cmd}` exited with ${rc}, expected ${expected}\nstdout:\n${out}\nstderr:\n${err}")
  endif()
  set(${out_var} "${out}" PARENT_SCOPE)
  set(${out_var}_err "${err}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
run(0 ignored ${MAKE_MODEL} ${WORK_DIR})
set(in ${WORK_DIR}/tiny.gguf)
set(q ${WORK_DIR}/tiny-Q4_K_M.gguf)

run(0 summary ${LOWBIT} quantize ${in} ${q} Q4_K_M --imatrix ${WORK_DIR}/tiny.imatrix.dat --threads 2)
if(NOT summary MATCHES "total: .* -> .*Q4_K_M \\(general.file_type 15\\)")
  message(FATAL_ERROR "quantize printed no total line:\n${summary}")
endif()

# Expected types, from llama-quantize's Q4_K_M rules for 8 layers (docs/cli.md):
# attn_v and ffn_down get more bits in layers 0, 3, 6, 7; ffn_down's rows (320) do
# not fit a 256-element format, so Q6_K falls back to Q8_0 and Q4_K to Q5_0.
run(0 json ${LOWBIT} inspect ${q} --json)
string(JSON container GET "${json}" container)
string(JSON file_type GET "${json}" metadata general.file_type)
string(JSON qversion GET "${json}" metadata general.quantization_version)
string(JSON arch GET "${json}" metadata general.architecture)
if(NOT container STREQUAL "gguf" OR NOT file_type EQUAL 15 OR NOT qversion EQUAL 2 OR NOT arch STREQUAL "llama")
  message(FATAL_ERROR "metadata: container=${container} file_type=${file_type} quantization_version=${qversion} arch=${arch}")
endif()
set(expected
  "token_embd.weight=Q4_K" "output.weight=Q6_K" "output_norm.weight=F32"
  "blk.0.attn_norm.weight=F32" "blk.0.attn_q.weight=Q4_K" "blk.0.attn_k.weight=Q4_K"
  "blk.0.attn_output.weight=Q4_K" "blk.0.ffn_gate.weight=Q4_K" "blk.0.ffn_up.weight=Q4_K")
foreach(l 0 1 2 3 4 5 6 7)
  if(l EQUAL 0 OR l EQUAL 3 OR l EQUAL 6 OR l EQUAL 7)
    list(APPEND expected "blk.${l}.attn_v.weight=Q6_K" "blk.${l}.ffn_down.weight=Q8_0")
  else()
    list(APPEND expected "blk.${l}.attn_v.weight=Q4_K" "blk.${l}.ffn_down.weight=Q5_0")
  endif()
endforeach()
string(JSON n LENGTH "${json}" tensors)
if(NOT n EQUAL 75)
  message(FATAL_ERROR "expected 75 tensors, inspect shows ${n}")
endif()
math(EXPR last "${n} - 1")
set(found "")
foreach(i RANGE ${last})
  string(JSON name GET "${json}" tensors ${i} name)
  string(JSON type GET "${json}" tensors ${i} type)
  list(APPEND found "${name}=${type}")
endforeach()
foreach(e IN LISTS expected)
  if(NOT e IN_LIST found)
    message(FATAL_ERROR "expected ${e}; inspect shows: ${found}")
  endif()
endforeach()

# Small errors: Q4_K_M on Gaussian-like weights is a few percent relative RMSE.
run(0 cmp ${LOWBIT} compare ${in} ${q} --json --quiet)
string(JSON rmse GET "${cmp}" total rel_rmse)
string(JSON cosine GET "${cmp}" total cosine)
string(JSON ncmp LENGTH "${cmp}" tensors)
if(NOT ncmp EQUAL 75 OR rmse GREATER 0.12 OR rmse LESS 0.001 OR cosine LESS 0.99)
  message(FATAL_ERROR "compare: ${ncmp} tensors, total rel_rmse ${rmse}, cosine ${cosine}")
endif()

# GPTQ where a Hessian exists (the rest falls back to rtn), GSQ into Q8_0.
run(0 out ${LOWBIT} quantize ${in} ${WORK_DIR}/gptq.gguf Q4_K_M --method gptq --hessians ${WORK_DIR}/hessians --quiet)
run(0 out ${LOWBIT} quantize ${in} ${WORK_DIR}/gsq.gguf Q8_0 --method gsq --quiet)
run(0 cmp ${LOWBIT} compare ${in} ${WORK_DIR}/gsq.gguf --json --quiet)
string(JSON rmse GET "${cmp}" total rel_rmse)
if(rmse GREATER 0.02)
  message(FATAL_ERROR "GSQ Q8_0: total rel_rmse ${rmse}")
endif()

# Errors: exit 1 with a message for bad files, 2 for bad command lines; no output left behind.
run(1 out ${LOWBIT} quantize ${WORK_DIR}/missing.gguf ${WORK_DIR}/never.gguf Q4_K_M)
if(NOT out_err MATCHES "lowbit: error: ")
  message(FATAL_ERROR "no error message for a missing input: ${out_err}")
endif()
run(1 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never.gguf Q4_0 --method gsq)
run(1 out ${LOWBIT} quantize ${WORK_DIR}/tiny.imatrix.dat ${WORK_DIR}/never.gguf Q8_0)
run(1 out ${LOWBIT} inspect ${WORK_DIR}/tiny.imatrix.dat)
run(2 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never.gguf Q9_X)
run(2 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never.gguf Q4_K_M --method gptq)
run(2 out ${LOWBIT} compare ${in})
if(EXISTS ${WORK_DIR}/never.gguf)
  message(FATAL_ERROR "a failed run left ${WORK_DIR}/never.gguf behind")
endif()
foreach(cmd quantize inspect compare)
  run(0 help ${LOWBIT} ${cmd} --help)
  if(NOT help MATCHES "usage: lowbit ${cmd}")
    message(FATAL_ERROR "lowbit ${cmd} --help printed no usage:\n${help}")
  endif()
endforeach()
message(STATUS "lowbit CLI smoke test passed")
