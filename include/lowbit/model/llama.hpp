#pragma once
// A minimal llama-architecture runtime over a GGUF file: RMSNorm, RoPE with the GGUF's
// rope settings, grouped-query attention with a KV cache, SwiGLU, tied or separate
// output. Weights stay in the file's formats (the mapping is read, never copied);
// every matrix product goes through one internal linear function (today: dequantized
// tiles + OpenBLAS SGEMM). Results do not depend on the thread count. docs/runtime.md
// lists what is supported.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/core/matrix_view.hpp"
#include "lowbit/formats/format.hpp"
#include "lowbit/model/tokenizer.hpp"

namespace lowbit {

class GgufFile;

struct LlamaHparams {
  std::string architecture;  // general.architecture ("llama")
  int64_t n_layer = 0;
  int64_t n_embd = 0;
  int64_t n_ff = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;     // attention.key_length, else n_embd / n_head
  int64_t n_vocab = 0;
  int64_t n_ctx_train = 0;  // context_length (0 when absent)
  int64_t rope_dim = 0;     // rope.dimension_count, else head_dim
  float rms_eps = 1e-5f;
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // 1 / rope.scaling.factor for linear scaling
  bool tied_output = false;      // no output.weight: the token embedding is the output matrix
};

// Sees the input of every linear layer before it is multiplied (calibration): the
// weight's GGUF name ("blk.3.ffn_down.weight") and x [tokens x in_features].
using LinearObserver = std::function<void(std::string_view weight, ConstMatrixView<float> x)>;

class LlamaModel {
 public:
  // Maps and checks the file: architecture (anything but llama throws Error naming
  // it), hyperparameters, every tensor's presence, shape and format, the tokenizer.
  static LlamaModel load(const std::filesystem::path& path);

  LlamaModel(LlamaModel&&) noexcept;
  LlamaModel& operator=(LlamaModel&&) noexcept;
  ~LlamaModel();

  const LlamaHparams& hparams() const;
  const Tokenizer& tokenizer() const;
  const GgufFile& file() const;
  // The linear weights in evaluation order (per layer q, k, v, output, gate, up,
  // down; then the output matrix), by GGUF name.
  std::vector<std::string> linear_weights() const;

  // Replaces block weight `name` (a layer's attn_q/k/v/output or ffn_gate/up/down)
  // with `bytes` of the same shape in `format` (row_bytes(format, cols) per row); the
  // model keeps the bytes. Everything that runs afterwards uses them (LlamaBlocks,
  // LlamaContext; a context with LinearPrecision::fast keeps the packed copy it made
  // of the old weight, so swap before creating such a context). Sequential GPTQ swaps
  // a block's weights for their quantized values this way. Throws Error for another
  // name, a format lowbit cannot decode or a size that does not fit.
  void replace_weight(const std::string& name, Format format, std::vector<std::byte> bytes);
  // Back to the file's weight, freeing the replacement (nothing to do without one).
  void restore_weight(const std::string& name);

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  LlamaModel() = default;
  std::unique_ptr<Impl> impl_;
};

// How the linear layers multiply (lowbit/kernels/matmul.hpp).
//   automatic  lowbit::matmul's own choice: batches up to 8 (token generation) through
//              the dot-product kernels on 8-bit activations (ggml's Q8_0/Q8_1/Q8_K
//              bytes, as llama.cpp multiplies), larger batches (prompts, perplexity
//              windows) on float32 activations times the decoded weights.
//   f32        float32 activations for every batch: the same logits whether a text
//              is decoded at once or token by token.
//   fast       8-bit activations at every batch, as llama.cpp: automatic's dot path
//              for small batches, and for larger ones lowbit::PackedMatrix
//              (lowbit/kernels/packed_matrix.hpp) where the weight's format repacks —
//              each such matrix repacked on first use and kept by the context (704
//              bytes per 16 x 32 weights) — else automatic's float32 path.
enum class LinearPrecision { automatic, f32, fast };

// One sequence's state: the KV cache (float32) of up to n_ctx positions. Everything
// but the linear layers' inputs under LinearPrecision::automatic at small batches
// stays float32 (llama.cpp also keeps K/V in fp16; docs/runtime.md shows what that
// does to agreement).
class LlamaContext {
 public:
  // The model must outlive the context. Throws Error for n_ctx < 1.
  LlamaContext(const LlamaModel& model, int64_t n_ctx, LinearPrecision precision = LinearPrecision::automatic);
  LlamaContext(LlamaContext&&) noexcept;
  LlamaContext& operator=(LlamaContext&&) noexcept;
  ~LlamaContext();

  int64_t n_ctx() const;
  int64_t n_past() const;  // positions filled so far
  void clear();            // empties the cache

  // Runs `tokens` at positions n_past() ... and appends them to the cache. Returns
  // the logits, row-major: every position's row (tokens.size() x n_vocab) when
  // all_logits, else only the last position's. Throws Error for an empty batch, a
  // token outside the vocabulary or a batch that does not fit in the cache.
  std::vector<float> decode(std::span<const int32_t> tokens, bool all_logits);

  // Called with each linear layer's input during decode (nullptr: none).
  void set_observer(LinearObserver observer);

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace lowbit
