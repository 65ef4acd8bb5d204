# Two commands on a fresh Debian machine: `make demo` and `make test`.
BUILD_DIR ?= build
# Quiet "Entering directory" lines from the build tool make runs underneath.
MAKEFLAGS += --no-print-directory
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
# Compiles go through ccache when it is installed (make deps installs it; its cache,
# ~/.cache/ccache, lies outside the tree): CI's fresh clones then recompile only what
# changed, and the shared-library and AArch64 test builds reuse what they can. Checked
# when the recipe runs, after deps; CCACHE= (empty) turns it off.
CCACHE ?= ccache
# Absolute paths stay in the hash (CCACHE_BASEDIR would make them relative to each
# build folder, and the test builds nested deeper would miss); a -g build's folder does
# not, so a sanitized tree of a clone at the same path hits too.
export CCACHE_NOHASHDIR ?= 1
LAUNCHER = $$(l=; [ -n "$(CCACHE)" ] && command -v "$(CCACHE)" > /dev/null 2>&1 && l="$(CCACHE)"; \
  echo "-DCMAKE_C_COMPILER_LAUNCHER=$$l -DCMAKE_CXX_COMPILER_LAUNCHER=$$l -DCMAKE_CUDA_COMPILER_LAUNCHER=$$l")
# test-sanitize: unit tests and the readers' fuzzers (clang only) under ASan+UBSan.
# clang++ when installed (it builds faster and its UBSan also checks float-to-int
# overflow), else the default compiler.
SANITIZE_DIR ?= build-sanitize
SANITIZERS ?= address,undefined
SANITIZE_CXX ?= $(if $(shell command -v clang++ 2>/dev/null),clang++,)
# The fuzzers need libFuzzer, that is clang: built when the sanitized tree uses it.
FUZZ_CXX := $(if $(findstring clang,$(notdir $(SANITIZE_CXX))),$(SANITIZE_CXX),)
FUZZ_RUNS ?= 200000
# 0: a random seed per run (exploration); the fixed default makes CI reproducible.
FUZZ_SEED ?= 1

.PHONY: all deps configure build demo test test-sanitize bench clean

all: build

deps:
	@./scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release $(LAUNCHER) $(CMAKE_FLAGS) > /dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

demo: build
	@$(BUILD_DIR)/tools/lowbit/lowbit demo

test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

# Unit tests only: the interop, gpu, package and neon (cross-compiled, uninstrumented)
# labels add nothing a sanitizer would see in lowbit's code and take most of the
# time. Any report fails the run. With clang++ the same tree also builds the readers'
# libFuzzer targets (label fuzz, run by the same ctest): one sanitized build of the
# library serves both, its coverage instrumentation (-fsanitize=fuzzer-no-link) only
# slowing the unit tests a little.
test-sanitize: deps
	@cmake -S . -B $(SANITIZE_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOWBIT_CUDA=OFF $(LAUNCHER) \
	  $(if $(SANITIZE_CXX),-DCMAKE_CXX_COMPILER=$(SANITIZE_CXX)) \
	  $(if $(FUZZ_CXX),-DLOWBIT_BUILD_FUZZERS=ON -DLOWBIT_FUZZ_RUNS=$(FUZZ_RUNS) -DLOWBIT_FUZZ_SEED=$(FUZZ_SEED),-DLOWBIT_BUILD_FUZZERS=OFF) \
	  -DLOWBIT_BUILD_BENCHMARKS=OFF -DLOWBIT_SANITIZE=$(SANITIZERS) $(CMAKE_FLAGS) > /dev/null
	@$(if $(FUZZ_CXX),,echo "lowbit: the libFuzzer targets need clang++ (SANITIZE_CXX=$(or $(SANITIZE_CXX),the default compiler)): skipping them")
	@cmake --build $(SANITIZE_DIR) -j $(JOBS)
	@cd $(SANITIZE_DIR) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) -LE 'interop|gpu|package|neon'

bench: build
	@$(BUILD_DIR)/benchmarks/bench_dequantize --benchmark_counters_tabular=true

clean:
	@rm -rf $(BUILD_DIR)
