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

  // From libggml-cpu (beside libggml-base): the CPU kernels ggml runs itself.
  // struct ggml_type_traits_cpu of the pinned ggml.
  struct CpuTraits {
    void (*from_float)(const float*, void*, int64_t);
    void (*vec_dot)(int n, float* s, size_t bs, const void* x, size_t bx, const void* y, size_t by, int nrc);
    int vec_dot_type;
    int64_t nrows;
  };
  const CpuTraits* (*cpu_traits)(int type) = nullptr;
  // The graph API, enough for one mul_mat (ggml's own GEMM driver and threads).
  struct InitParams {
    size_t mem_size;
    void* mem_buffer;
    bool no_alloc;
  };
  void* (*init)(InitParams) = nullptr;
  void (*free_context)(void*) = nullptr;
  void* (*new_tensor_2d)(void* ctx, int type, int64_t ne0, int64_t ne1) = nullptr;
  void* (*mul_mat)(void* ctx, void* a, void* b) = nullptr;
  void* (*new_graph)(void* ctx) = nullptr;
  void (*build_forward_expand)(void* graph, void* tensor) = nullptr;
  void* (*get_data)(const void* tensor) = nullptr;
  size_t (*graph_overhead)() = nullptr;
  // struct ggml_cplan of the pinned ggml: the plan is made once and its work buffer
  // is the caller's (graph_compute_with_ctx would take a new one from the context on
  // every call and exhaust it in a timing loop).
  struct ComputePlan {
    size_t work_size;
    uint8_t* work_data;
    int n_threads;
    void* threadpool;
    bool (*abort_callback)(void*);
    void* abort_callback_data;
    bool use_ref;
  };
  ComputePlan (*graph_plan)(const void* graph, int n_threads, void* threadpool) = nullptr;
  int (*graph_compute)(void* graph, ComputePlan* plan) = nullptr;
  bool has_cpu() const { return cpu_traits && init && graph_plan && graph_compute; }

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

  static void load_cpu(GgmlPeer& p, const std::string& base_path) {
    const std::string cpu = base_path.substr(0, base_path.rfind('/') + 1) + "libggml-cpu.so";
    void* lib = dlopen(cpu.c_str(), RTLD_NOW | RTLD_LOCAL);
    void* base = dlopen(base_path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (!lib || !base) return;
    auto sym = [](void* l, const char* name) { return dlsym(l, name); };
    p.cpu_traits = reinterpret_cast<decltype(p.cpu_traits)>(sym(lib, "ggml_get_type_traits_cpu"));
    p.graph_plan = reinterpret_cast<decltype(p.graph_plan)>(sym(lib, "ggml_graph_plan"));
    p.graph_compute = reinterpret_cast<decltype(p.graph_compute)>(sym(lib, "ggml_graph_compute"));
    p.init = reinterpret_cast<decltype(p.init)>(sym(base, "ggml_init"));
    p.free_context = reinterpret_cast<decltype(p.free_context)>(sym(base, "ggml_free"));
    p.new_tensor_2d = reinterpret_cast<decltype(p.new_tensor_2d)>(sym(base, "ggml_new_tensor_2d"));
    p.mul_mat = reinterpret_cast<decltype(p.mul_mat)>(sym(base, "ggml_mul_mat"));
    p.new_graph = reinterpret_cast<decltype(p.new_graph)>(sym(base, "ggml_new_graph"));
    p.build_forward_expand = reinterpret_cast<decltype(p.build_forward_expand)>(sym(base, "ggml_build_forward_expand"));
    p.get_data = reinterpret_cast<decltype(p.get_data)>(sym(base, "ggml_get_data"));
    p.graph_overhead = reinterpret_cast<decltype(p.graph_overhead)>(sym(base, "ggml_graph_overhead"));
    auto* cpu_init = reinterpret_cast<void (*)()>(sym(lib, "ggml_cpu_init"));
    if (!cpu_init || !p.free_context || !p.new_tensor_2d || !p.mul_mat || !p.new_graph || !p.build_forward_expand ||
        !p.get_data || !p.graph_overhead) {
      p.cpu_traits = nullptr;
      return;
    }
    cpu_init();  // fills ggml-cpu's fp16 tables before any kernel runs
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
    load_cpu(*p, path);
    std::fprintf(stderr, "ggml peer: %s%s\n", path.c_str(), p->has_cpu() ? " (+ libggml-cpu)" : "");
    return p;
  }
};

}  // namespace lowbit::bench
