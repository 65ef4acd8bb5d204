#pragma once
// ggml as a peer measured in the same run (docs/benchmarks.md, "Protocol"): libggml-base.so
// from the llama-cpp-python package in the interop venv, loaded with dlopen.
// Found through $LOWBIT_GGML_BASE, else ~/.cache/lowbit/venv (or $LOWBIT_VENV).
// Without it the peer benchmarks are simply not registered (a line says so).
#include <dlfcn.h>
#include <glob.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace lowbit::bench {

struct GgmlPeer {
  // struct ggml_type_traits of the pinned ggml (llama-cpp-python 0.3.36).
  struct TypeTraits {
    const char* type_name;
    int64_t blck_size, blck_size_interleave;
    size_t type_size;
    bool is_quantized;
    void (*to_float)(const void*, float*, int64_t);
    void (*from_float_ref)(const float*, void*, int64_t);
  };
  size_t (*quantize_chunk)(int type, const float* src, void* dst, int64_t start, int64_t nrows, int64_t n_per_row,
                           const float* imatrix) = nullptr;
  void (*quantize_init)(int type) = nullptr;
  const TypeTraits* (*type_traits)(int type) = nullptr;
  void (*quantize_row_q8_0_ref)(const float*, void*, int64_t) = nullptr;
  void (*quantize_row_q8_1_ref)(const float*, void*, int64_t) = nullptr;
  void (*quantize_row_q8_K_ref)(const float*, void*, int64_t) = nullptr;
  void (*dequantize_row_q8_K)(const void*, float*, int64_t) = nullptr;
  std::string path;

  static const GgmlPeer* get() {
    static const GgmlPeer* peer = load();
    return peer;
  }

 private:
  static std::string find() {
    if (const char* p = std::getenv("LOWBIT_GGML_BASE")) return p;
    std::string venv;
    if (const char* v = std::getenv("LOWBIT_VENV")) venv = v;
    else if (const char* h = std::getenv("HOME")) venv = std::string(h) + "/.cache/lowbit/venv";
    const std::string pattern = venv + "/lib/python3*/site-packages/llama_cpp/lib/libggml-base.so";
    glob_t g{};
    std::string found;
    if (glob(pattern.c_str(), 0, nullptr, &g) == 0 && g.gl_pathc > 0) found = g.gl_pathv[0];
    globfree(&g);
    return found;
  }

  static const GgmlPeer* load() {
    const std::string path = find();
    void* lib = path.empty() ? nullptr : dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      std::fprintf(stderr, "ggml peer: libggml-base.so not found (run `make test` once to create the venv, or set "
                           "LOWBIT_GGML_BASE); ggml benchmarks skipped\n");
      return nullptr;
    }
    auto* p = new GgmlPeer;
    p->path = path;
    p->quantize_chunk = reinterpret_cast<decltype(p->quantize_chunk)>(dlsym(lib, "ggml_quantize_chunk"));
    p->quantize_init = reinterpret_cast<decltype(p->quantize_init)>(dlsym(lib, "ggml_quantize_init"));
    p->type_traits = reinterpret_cast<decltype(p->type_traits)>(dlsym(lib, "ggml_get_type_traits"));
    p->quantize_row_q8_0_ref = reinterpret_cast<decltype(p->quantize_row_q8_0_ref)>(dlsym(lib, "quantize_row_q8_0_ref"));
    p->quantize_row_q8_1_ref = reinterpret_cast<decltype(p->quantize_row_q8_1_ref)>(dlsym(lib, "quantize_row_q8_1_ref"));
    p->quantize_row_q8_K_ref = reinterpret_cast<decltype(p->quantize_row_q8_K_ref)>(dlsym(lib, "quantize_row_q8_K_ref"));
    p->dequantize_row_q8_K = reinterpret_cast<decltype(p->dequantize_row_q8_K)>(dlsym(lib, "dequantize_row_q8_K"));
    if (!p->quantize_chunk || !p->quantize_init || !p->type_traits) {
      std::fprintf(stderr, "ggml peer: %s lacks the expected symbols; ggml benchmarks skipped\n", path.c_str());
      return nullptr;
    }
    std::fprintf(stderr, "ggml peer: %s\n", path.c_str());
    return p;
  }
};

}  // namespace lowbit::bench
