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

# --dry-run prints the plan with llama-quantize's per-tensor options applied (the types
# worked out by hand from the rules above) and writes nothing.
run(0 plan ${LOWBIT} quantize ${in} ${WORK_DIR}/dry.gguf Q4_K_M --dry-run --tensor-type "attn_(q|k)=Q5_K"
    --tensor-type "blk\\.1\\.attn_q=Q8_0" --output-tensor-type Q8_0 --token-embedding-type Q6_K)
foreach(line
    "blk.0.attn_q.weight +\\[256, 256\\] +F32 +Q5_K +45056  override"
    "blk.1.attn_q.weight +\\[256, 256\\] +F32 +Q8_0 +69632  override"
    "blk.1.attn_k.weight +\\[256, 64\\] +F32 +Q5_K +11264  override"
    "blk.1.attn_v.weight +\\[256, 64\\] +F32 +Q4_K +9216  rule"
    "blk.0.ffn_down.weight +\\[320, 256\\] +F32 +Q8_0 +87040  fallback"
    "output.weight +\\[256, 64\\] +F32 +Q8_0 +17408  override"
    "token_embd.weight +\\[256, 64\\] +F16 +Q6_K +13440  override"
    "output_norm.weight +\\[256\\] +F32 +F32 +1024  kept")
  if(NOT plan MATCHES "${line}")
    message(FATAL_ERROR "--dry-run: no line matching '${line}' in:\n${plan}")
  endif()
endforeach()
if(EXISTS ${WORK_DIR}/dry.gguf)
  message(FATAL_ERROR "--dry-run wrote ${WORK_DIR}/dry.gguf")
endif()
# --pure: every quantizable tensor Q4_K (output.weight too); --leave-output-tensor keeps F32.
run(0 plan ${LOWBIT} quantize ${in} ${WORK_DIR}/dry.gguf Q4_K_M --dry-run --pure --leave-output-tensor)
if(NOT plan MATCHES "blk.0.attn_v.weight +[^\n]* Q4_K " OR NOT plan MATCHES "output.weight +[^\n]* F32 +F32 ")
  message(FATAL_ERROR "--pure --leave-output-tensor:\n${plan}")
endif()
# --target-bpw: the file's bits per weight never exceed the budget.
foreach(bpw 3.5 5)
  run(0 plan ${LOWBIT} quantize ${in} ${WORK_DIR}/dry.gguf Q4_K_M --dry-run --target-bpw ${bpw} --quiet)
  string(REGEX MATCH "-> [0-9.]+ bits/weight" got "${plan}")
  string(REGEX REPLACE "-> ([0-9.]+) bits/weight" "\\1" got "${got}")
  if(got STREQUAL "" OR got GREATER ${bpw})
    message(FATAL_ERROR "--target-bpw ${bpw} gave '${got}' bits/weight:\n${plan}")
  endif()
endforeach()
# --split-max-tensors: gguf-split's names; `inspect` of the first part lists every tensor.
run(0 out ${LOWBIT} quantize ${in} ${WORK_DIR}/split.gguf Q4_K_M --split-max-tensors 30 --quiet)
run(0 json ${LOWBIT} inspect ${WORK_DIR}/split-00001-of-00003.gguf --json)
string(JSON n LENGTH "${json}" tensors)
if(NOT n EQUAL 75 OR NOT EXISTS ${WORK_DIR}/split-00003-of-00003.gguf)
  message(FATAL_ERROR "split: inspect of the first part shows ${n} tensors")
endif()
# --resume with nothing to resume is an ordinary run: the same bytes.
run(0 out ${LOWBIT} quantize ${in} ${WORK_DIR}/resumed.gguf Q4_K_M --imatrix ${WORK_DIR}/tiny.imatrix.dat --resume --quiet)
file(SHA256 ${q} h1)
file(SHA256 ${WORK_DIR}/resumed.gguf h2)
if(NOT h1 STREQUAL h2)
  message(FATAL_ERROR "--resume without a partial output changed the bytes")
endif()
run(2 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never.gguf Q4_K_M --tensor-type attn_q)
run(2 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never.gguf Q4_K_M --tensor-type attn_q=Q9_K)
run(2 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never.gguf Q4_K_M --target-bpw 0)
run(2 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never.gguf Q4_K_M --split-max-size 12X)
run(2 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never.gguf Q4_K_M --effort slow)
run(2 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never.gguf Q4_0 --method gsq --effort fast)
# Every effort writes a loadable model of the same layout.
foreach(effort fast best)
  run(0 out ${LOWBIT} quantize ${in} ${WORK_DIR}/effort-${effort}.gguf Q4_K_M --effort ${effort} --quiet)
  file(SIZE ${WORK_DIR}/effort-${effort}.gguf s_effort)
  file(SIZE ${q} s_default)
  if(NOT s_effort EQUAL s_default)
    message(FATAL_ERROR "--effort ${effort}: ${s_effort} bytes, the default effort's file has ${s_default}")
  endif()
endforeach()
run(1 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never.gguf Q4_K_M --tensor-type "(=Q8_0")

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
# eval / calibrate: the tiny model has no tokenizer, which must be named; missing
# required options are usage errors; a failed calibrate leaves no imatrix behind.
file(WRITE ${WORK_DIR}/text.txt "some calibration text")
run(1 out ${LOWBIT} eval ${in} --text ${WORK_DIR}/text.txt)
if(NOT out_err MATCHES "tokenizer")
  message(FATAL_ERROR "eval of a model without a tokenizer: ${out_err}")
endif()
run(1 out ${LOWBIT} calibrate ${in} --text ${WORK_DIR}/text.txt -o ${WORK_DIR}/never.imatrix.gguf)
run(1 out ${LOWBIT} eval ${in} --text ${WORK_DIR}/missing.txt)
run(2 out ${LOWBIT} eval ${in})
run(2 out ${LOWBIT} calibrate ${in} --text ${WORK_DIR}/text.txt)
run(2 out ${LOWBIT} eval ${in} --text ${WORK_DIR}/text.txt --ctx 1)
if(EXISTS ${WORK_DIR}/never.imatrix.gguf)
  message(FATAL_ERROR "a failed calibrate left ${WORK_DIR}/never.imatrix.gguf behind")
endif()
# quantize --calib (sequential GPTQ): only with --method gptq, not with --hessians or
# --imatrix, --ctx/--chunks only with it (usage errors); the tiny model has no
# tokenizer and an empty text is refused, both before any output exists.
run(2 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never.gguf Q4_0 --calib ${WORK_DIR}/text.txt)
run(2 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never.gguf Q4_0 --method gptq --calib ${WORK_DIR}/text.txt --hessians ${WORK_DIR})
run(2 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never.gguf Q4_0 --method gptq --calib ${WORK_DIR}/text.txt --imatrix ${WORK_DIR}/tiny.imatrix.dat)
run(2 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never.gguf Q4_0 --method gptq --hessians ${WORK_DIR} --ctx 64)
run(1 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never.gguf Q4_0 --method gptq --calib ${WORK_DIR}/text.txt)
if(NOT out_err MATCHES "tokenizer")
  message(FATAL_ERROR "--calib on a model without a tokenizer: ${out_err}")
endif()
# --calib with --target-bpw (any method) measures sensitivities: the runtime needs a
# tokenizer, which the tiny model lacks.
run(1 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never.gguf Q4_K_M --target-bpw 6 --calib ${WORK_DIR}/text.txt)
if(NOT out_err MATCHES "tokenizer")
  message(FATAL_ERROR "--target-bpw --calib on a model without a tokenizer: ${out_err}")
endif()
run(1 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never.gguf Q4_0 --method gptq --calib ${WORK_DIR}/missing.txt)
if(EXISTS ${WORK_DIR}/never.gguf OR EXISTS ${WORK_DIR}/never.gguf.partial)
  message(FATAL_ERROR "a failed quantize --calib left ${WORK_DIR}/never.gguf behind")
endif()
# GPTQ_INT4 (a Hugging Face GPTQ checkpoint folder): only from --method gptq --calib,
# without the GGUF-only options; its options only with it; a model the runtime cannot
# run leaves no folder behind.
run(2 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never_hf GPTQ_INT4 --method gptq)
run(2 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never_hf GPTQ_INT4 --calib ${WORK_DIR}/text.txt)
run(2 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never_hf GPTQ_INT4 --method gptq --calib ${WORK_DIR}/text.txt --pure)
run(2 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never_hf GPTQ_INT4 --method gptq --calib ${WORK_DIR}/text.txt --checkpoint-format v3)
run(2 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never.gguf Q4_0 --group-size 64)
run(1 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never_hf GPTQ_INT4 --method gptq --calib ${WORK_DIR}/text.txt)
if(EXISTS ${WORK_DIR}/never_hf)
  message(FATAL_ERROR "a failed GPTQ_INT4 export left ${WORK_DIR}/never_hf behind")
endif()
# --imatrix-objective only with an imatrix, and only pure or blend.
run(2 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never.gguf Q4_K_M --imatrix-objective blend)
run(2 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never.gguf Q4_K_M --imatrix ${WORK_DIR}/tiny.imatrix.dat --imatrix-objective ggml)
# An empty --imatrix is a usage error, not "no imatrix"; so are demo's bad options.
run(2 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never.gguf Q4_K_M --imatrix "")
run(2 out ${LOWBIT} demo --rows)
run(2 out ${LOWBIT} demo --only everything)
if(EXISTS ${WORK_DIR}/never.gguf)
  message(FATAL_ERROR "a refused command line left ${WORK_DIR}/never.gguf behind")
endif()
if(EXISTS ${WORK_DIR}/never.gguf)
  message(FATAL_ERROR "a failed run left ${WORK_DIR}/never.gguf behind")
endif()
# Output safety (docs/reliability.md): refused before any work, nothing destroyed.
function(expect_error text)  # the last run's stderr must contain `text`
  string(FIND "${out_err}" "${text}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "expected an error containing '${text}', got:\n${out_err}")
  endif()
endfunction()
file(SHA256 ${in} in_before)
run(1 out ${LOWBIT} quantize ${in} /dev/null Q8_0)
expect_error("output '/dev/null' is a character device, not a regular file")
run(1 out ${LOWBIT} quantize ${in} ${in} Q8_0)
expect_error("output '${in}' is the input file '${in}'")
file(CREATE_LINK ${in} ${WORK_DIR}/hardlink.gguf)
run(1 out ${LOWBIT} quantize ${in} ${WORK_DIR}/hardlink.gguf Q8_0)
expect_error("is the input file")
file(CREATE_LINK ${in} ${WORK_DIR}/symlink.gguf SYMBOLIC)
run(1 out ${LOWBIT} quantize ${in} ${WORK_DIR}/symlink.gguf Q8_0)
expect_error("is the input file")
file(SHA256 ${in} in_after)
if(NOT in_before STREQUAL in_after)
  message(FATAL_ERROR "a refused run changed the input ${in}")
endif()
run(1 out ${LOWBIT} quantize ${in} ${WORK_DIR}/no-such-folder/out.gguf Q8_0)
expect_error("folder '${WORK_DIR}/no-such-folder' does not exist")
run(1 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never.gguf Q4_K_M --imatrix ${WORK_DIR})
expect_error("importance-matrix file '${WORK_DIR}': is a directory, not a regular file")
run(1 out ${LOWBIT} quantize ${in} ${WORK_DIR}/never.gguf Q4_K_M --imatrix /dev/zero)
expect_error("'/dev/zero': is a character device, not a regular file")
# An existing output keeps its permissions (600 here, not the umask's 644).
file(WRITE ${WORK_DIR}/private.gguf "old")
file(CHMOD ${WORK_DIR}/private.gguf PERMISSIONS OWNER_READ OWNER_WRITE)
run(0 out ${LOWBIT} quantize ${in} ${WORK_DIR}/private.gguf Q8_0 --quiet)
execute_process(COMMAND stat -c %a ${WORK_DIR}/private.gguf OUTPUT_VARIABLE mode OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT mode STREQUAL "600")
  message(FATAL_ERROR "the output's mode became ${mode}, expected 600")
endif()
# The longest legal file name (255 bytes) works; no temporary is left anywhere.
string(REPEAT "m" 250 long)
run(0 out ${LOWBIT} quantize ${in} ${WORK_DIR}/${long}.gguf Q8_0 --quiet)
if(NOT EXISTS ${WORK_DIR}/${long}.gguf)
  message(FATAL_ERROR "no output under a 255-byte name")
endif()
file(GLOB leftovers ${WORK_DIR}/*.tmp.* ${WORK_DIR}/.lowbit-* ${WORK_DIR}/*.partial*)
if(leftovers)
  message(FATAL_ERROR "temporary files left behind: ${leftovers}")
endif()
foreach(cmd quantize inspect compare eval calibrate)
  run(0 help ${LOWBIT} ${cmd} --help)
  if(NOT help MATCHES "usage: lowbit ${cmd}")
    message(FATAL_ERROR "lowbit ${cmd} --help printed no usage:\n${help}")
  endif()
endforeach()
message(STATUS "lowbit CLI smoke test passed")
