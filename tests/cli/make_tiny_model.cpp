// Writes a tiny llama-shaped GGUF model and a matching legacy imatrix for the CLI
// smoke test: make_tiny_model OUT_DIR -> OUT_DIR/tiny.gguf, OUT_DIR/tiny.imatrix.dat and
// OUT_DIR/hessians/blk.0.attn_q.weight.hess.
//
// 8 layers, width 256, 8 query heads over 2 KV heads (GQA 4), FFN width 320 so that
// ffn_down's rows (320) exercise the 256-element fallback; token_embd is F16 so the
// quantizer's dequantize-first path runs; norms are 1-D F32.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "lowbit/lowbit.hpp"

namespace {

constexpr int64_t kLayers = 8, kEmbd = 256, kKv = 64, kFfn = 320, kVocab = 64;

struct Weight {
  std::string name;
  int64_t cols, rows;  // ne0, ne1
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_tiny_model OUT_DIR\n");
    return 2;
  }
  try {
    const std::filesystem::path dir = argv[1];
    std::filesystem::create_directories(dir);
    lowbit::GgufWriter w;
    w.set("general.architecture", "llama");
    w.set("general.name", "lowbit tiny test model");
    w.set("llama.block_count", uint32_t{kLayers});
    w.set("llama.context_length", uint32_t{512});
    w.set("llama.embedding_length", uint32_t{kEmbd});
    w.set("llama.rope.dimension_count", uint32_t{kEmbd / 8});
    w.set("llama.feed_forward_length", uint32_t{kFfn});
    w.set("llama.attention.head_count", uint32_t{8});
    w.set("llama.attention.head_count_kv", uint32_t{2});
    w.set("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    w.set("general.file_type", uint32_t{0});
    w.set("tokenizer.ggml.tokens", lowbit::GgufValue::array_of_strings(std::vector<std::string>(kVocab, "tok")));

    std::vector<Weight> linear;
    for (int64_t l = 0; l < kLayers; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      linear.push_back({p + "attn_q.weight", kEmbd, kEmbd});
      linear.push_back({p + "attn_k.weight", kEmbd, kKv});
      linear.push_back({p + "attn_v.weight", kEmbd, kKv});
      linear.push_back({p + "attn_output.weight", kEmbd, kEmbd});
      linear.push_back({p + "ffn_gate.weight", kEmbd, kFfn});
      linear.push_back({p + "ffn_up.weight", kEmbd, kFfn});
      linear.push_back({p + "ffn_down.weight", kFfn, kEmbd});
    }

    uint64_t seed = 1;
    auto f32_bytes = [](const std::vector<float>& v) {
      std::vector<std::byte> b(v.size() * sizeof(float));
      std::memcpy(b.data(), v.data(), b.size());
      return b;
    };
    // token_embd in F16.
    {
      const std::vector<float> e = lowbit::synthetic_weights(kVocab, kEmbd, seed++);
      std::vector<std::byte> b(e.size() * 2);
      for (size_t i = 0; i < e.size(); ++i) {
        const uint16_t h = lowbit::fp32_to_fp16(e[i]);
        std::memcpy(b.data() + 2 * i, &h, 2);
      }
      w.add_tensor("token_embd.weight", {kEmbd, kVocab}, lowbit::Format::F16, std::move(b));
    }
    const std::vector<float> ones(kEmbd, 1.0f);
    for (int64_t l = 0; l < kLayers; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      w.add_tensor(p + "attn_norm.weight", {kEmbd}, lowbit::Format::F32, f32_bytes(ones));
      w.add_tensor(p + "ffn_norm.weight", {kEmbd}, lowbit::Format::F32, f32_bytes(ones));
      for (const Weight& x : linear)
        if (x.name.starts_with(p))
          w.add_tensor(x.name, {x.cols, x.rows}, lowbit::Format::F32,
                       f32_bytes(lowbit::synthetic_weights(x.rows, x.cols, seed++)));
    }
    w.add_tensor("output_norm.weight", {kEmbd}, lowbit::Format::F32, f32_bytes(ones));
    w.add_tensor("output.weight", {kEmbd, kVocab}, lowbit::Format::F32,
                 f32_bytes(lowbit::synthetic_weights(kVocab, kEmbd, seed++)));
    w.write(dir / "tiny.gguf");

    // Legacy imatrix: i32 count, then per entry name, ncall, nval, values * ncall.
    std::ofstream out(dir / "tiny.imatrix.dat", std::ios::binary);
    auto i32 = [&](int32_t v) { out.write(reinterpret_cast<const char*>(&v), 4); };
    i32(static_cast<int32_t>(linear.size()));
    const int32_t ncall = 10;
    for (const Weight& x : linear) {
      i32(static_cast<int32_t>(x.name.size()));
      out.write(x.name.data(), static_cast<std::streamsize>(x.name.size()));
      i32(ncall);
      i32(static_cast<int32_t>(x.cols));
      for (float v : lowbit::synthetic_importance(x.cols, 7)) {
        const float stored = v * ncall;
        out.write(reinterpret_cast<const char*>(&stored), 4);
      }
    }
    i32(10);  // chunk count
    const std::string dataset = "synthetic";
    i32(static_cast<int32_t>(dataset.size()));
    out.write(dataset.data(), static_cast<std::streamsize>(dataset.size()));
    if (!out) throw lowbit::Error("cannot write the imatrix");

    // A Hessian for one tensor, for --method gptq (the others fall back to rtn).
    std::filesystem::create_directories(dir / "hessians");
    lowbit::HessianAccumulator h(kEmbd);
    const std::vector<float> x = lowbit::synthetic_activations(1024, kEmbd, 3);
    h.add({x.data(), 1024, kEmbd});
    h.save((dir / "hessians" / "blk.0.attn_q.weight.hess").string());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_tiny_model: %s\n", e.what());
    return 1;
  }
}
