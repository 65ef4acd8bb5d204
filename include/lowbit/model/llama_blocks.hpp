#pragma once
// Block-at-a-time evaluation of a LlamaModel, for calibration that changes a block's
// weights between passes (true-sequential GPTQ, QuantizeModelOptions::calibration).
//
// A window of T tokens is one sequence at positions 0..T-1 that attends only within
// itself (no KV cache), computed in float32 throughout: the arithmetic of
// LlamaContext::decode on that window from an empty cache with LinearPrecision::f32,
// step for step, so what a step writes is what the decoder's linear layers would read.
//
// A block is six steps, each ending where the next linear layers read their input;
// x [T x n_embd] is the residual stream entering block `layer`:
//
//   attn_input(layer, x, h)      h   = attn_norm(x)                          (q, k, v read h)
//   attention(layer, h, att)     att = softmax(rope(q h) rope(k h)^T) (v h)  (attn_output reads att)
//   attn_residual(layer, att, x) x  += attn_output att
//   ffn_input(layer, x, h)       h   = ffn_norm(x)                           (gate, up read h)
//   ffn_act(layer, h, a)         a   = silu(gate h) * up h                   (down reads a)
//   ffn_residual(layer, a, x)    x  += down a
//
// Each step uses the block's weights as they are when it runs, so swapping a weight
// (LlamaModel::replace_weight) between steps feeds the later steps the outputs of the
// swapped one. Shapes are checked (Error naming the step, the layer and the shapes);
// results do not depend on the thread count.
#include <cstdint>
#include <span>

#include "lowbit/core/matrix_view.hpp"
#include "lowbit/model/llama.hpp"

namespace lowbit {

class LlamaBlocks {
 public:
  explicit LlamaBlocks(const LlamaModel& model);  // the model must outlive this

  // x[t] = the token embedding of tokens[t]; x is [tokens.size() x n_embd].
  void embed(std::span<const int32_t> tokens, MatrixView<float> x) const;

  void attn_input(int64_t layer, ConstMatrixView<float> x, MatrixView<float> h) const;
  void attention(int64_t layer, ConstMatrixView<float> h, MatrixView<float> att) const;  // att: [T x n_head*head_dim]
  void attn_residual(int64_t layer, ConstMatrixView<float> att, MatrixView<float> x) const;
  void ffn_input(int64_t layer, ConstMatrixView<float> x, MatrixView<float> h) const;
  void ffn_act(int64_t layer, ConstMatrixView<float> h, MatrixView<float> a) const;  // a: [T x n_ff]
  void ffn_residual(int64_t layer, ConstMatrixView<float> a, MatrixView<float> x) const;
  // h = output_norm(x): what the output matrix reads after the last block.
  void output_input(ConstMatrixView<float> x, MatrixView<float> h) const;

 private:
  const LlamaModel* model_;
};

}  // namespace lowbit
