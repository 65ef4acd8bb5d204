#pragma once
// A tiny synthetic llama for the model tests (sequential GPTQ, the HF GPTQ export):
// 2 layers, n_embd 64, 4 heads of 16 (2 for K/V), n_ff 128, F32 weights, tied output,
// a byte-level BPE vocabulary of 11 tokens; written to a temporary GGUF that is
// removed when its TempFile goes.
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "lowbit/io/gguf.hpp"

namespace lowbit::test {

namespace fs = std::filesystem;

constexpr int64_t kLayers = 2, kEmbd = 64, kHeads = 4, kKvHeads = 2, kHeadDim = 16, kFf = 128, kCtx = 16;
inline const std::vector<std::string> kTokens = {"<|endoftext|>", "a", "b", "Ġ", "ab", "Ġab", "1", "2", "Ċ", "ĠĠ", "!"};
inline const std::vector<std::string> kMerges = {"a b", "Ġ ab", "Ġ Ġ"};

inline std::vector<float> values(int64_t n, uint32_t seed, float scale) {
  std::vector<float> v(static_cast<size_t>(n));
  uint32_t s = seed * 2654435761u + 1;
  for (float& x : v) {
    s = s * 1664525u + 1013904223u;
    x = scale * (static_cast<float>(s >> 8) / static_cast<float>(1 << 24) * 2.0f - 1.0f);
  }
  return v;
}

inline fs::path temp_path(const std::string& name) {
  return fs::temp_directory_path() / ("lowbit_tiny_" + name + "_" + std::to_string(getpid()) + ".gguf");
}

struct TempFile {
  fs::path path;
  ~TempFile() { fs::remove(path); }
};

// A 2-layer llama (F32 weights, tied output) with a byte-level BPE vocabulary of 11.
inline std::unique_ptr<TempFile> make_model(const std::string& name, const std::function<void(GgufWriter&)>& edit = nullptr) {
  GgufWriter w;
  w.set("general.architecture", "llama");
  w.set("llama.block_count", uint32_t{kLayers});
  w.set("llama.embedding_length", uint32_t{kEmbd});
  w.set("llama.feed_forward_length", uint32_t{kFf});
  w.set("llama.attention.head_count", uint32_t{kHeads});
  w.set("llama.attention.head_count_kv", uint32_t{kKvHeads});
  w.set("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.set("llama.rope.freq_base", 10000.0f);
  w.set("tokenizer.ggml.model", "gpt2");
  w.set("tokenizer.ggml.pre", "smollm");
  w.set("tokenizer.ggml.tokens", GgufValue::array_of_strings(kTokens));
  std::vector<int32_t> types(kTokens.size(), 1);
  types[0] = 3;
  w.set("tokenizer.ggml.token_type", GgufValue::array<int32_t>(std::span<const int32_t>(types)));
  w.set("tokenizer.ggml.merges", GgufValue::array_of_strings(kMerges));
  w.set("tokenizer.ggml.bos_token_id", uint32_t{0});
  w.set("tokenizer.ggml.eos_token_id", uint32_t{0});
  w.set("tokenizer.ggml.add_bos_token", true);
  uint32_t seed = 7;
  const auto add = [&](const std::string& n, std::vector<int64_t> shape, float scale, float offset = 0.0f) {
    std::vector<float> v = values(shape.size() == 1 ? shape[0] : shape[0] * shape[1], seed++, scale);
    for (float& x : v) x += offset;
    std::vector<std::byte> bytes(v.size() * sizeof(float));
    std::memcpy(bytes.data(), v.data(), bytes.size());
    w.add_tensor(n, shape, Format::F32, std::move(bytes));
  };
  add("token_embd.weight", {kEmbd, static_cast<int64_t>(kTokens.size())}, 1.0f);
  for (int64_t i = 0; i < kLayers; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    add(b + "attn_norm.weight", {kEmbd}, 0.2f, 1.0f);
    add(b + "attn_q.weight", {kEmbd, kHeads * kHeadDim}, 0.3f);
    add(b + "attn_k.weight", {kEmbd, kKvHeads * kHeadDim}, 0.3f);
    add(b + "attn_v.weight", {kEmbd, kKvHeads * kHeadDim}, 0.3f);
    add(b + "attn_output.weight", {kHeads * kHeadDim, kEmbd}, 0.3f);
    add(b + "ffn_norm.weight", {kEmbd}, 0.2f, 1.0f);
    add(b + "ffn_gate.weight", {kEmbd, kFf}, 0.3f);
    add(b + "ffn_up.weight", {kEmbd, kFf}, 0.3f);
    add(b + "ffn_down.weight", {kFf, kEmbd}, 0.2f);
  }
  add("output_norm.weight", {kEmbd}, 0.2f, 1.0f);
  if (edit) edit(w);
  auto f = std::make_unique<TempFile>();
  f->path = temp_path(name);
  w.write(f->path);
  return f;
}

// "ab ab12\n!a  b" repeated: 10 tokens each.
inline std::string text_of(int repeats) {
  std::string s;
  for (int i = 0; i < repeats; ++i) s += "ab ab12\n!a  b";
  return s;
}

}  // namespace lowbit::test
