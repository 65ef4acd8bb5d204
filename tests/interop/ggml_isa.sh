# Sourced by setup_venv.sh and build_llama_tools.sh: both build ggml, and both must
# build it with the same ISA options (and never -march=native; see setup_venv.sh).
# The ggml CMake options for this host: the x86 extensions /proc/cpuinfo lists (Linux
# lists AVX and AVX-512 only when the OS enables their register state), AMX never.
ggml_cmake_args() {
  local args="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
  if [ "$(uname -m)" = x86_64 ]; then
    local flags
    flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2 | tr -s ' \t' '  ') "
    has() { local f; for f in "$@"; do [[ $flags == *" $f "* ]] || return 1; done; }
    local avx512=0
    has avx512f avx512cd avx512vl avx512dq avx512bw && avx512=1
    local opt name
    for opt in "AVX avx" "AVX2 avx2" "FMA fma" "F16C f16c" "BMI2 bmi2" "AVX_VNNI avx_vnni" \
               "AVX512 avx512f" "AVX512_VBMI avx512vbmi" "AVX512_VNNI avx512_vnni" \
               "AVX512_BF16 avx512_bf16"; do
      # shellcheck disable=SC2086
      set -- $opt
      name=$1
      shift
      # ggml's AVX512 option also turns on CD, VL, DQ and BW; the sub-options need it.
      if has "$@" && { [[ $name != AVX512* ]] || [ "$avx512" = 1 ]; }; then
        args+=" -DGGML_$name=ON"
      else
        args+=" -DGGML_$name=OFF"
      fi
    done
  fi
  echo "$args"
}
