#pragma once
// True-sequential GPTQ's calibration (Frantar et al., 2022; AutoGPTQ's
// true_sequential=True), QuantizeModelOptions::calibration. Given with
// QuantMethod::gptq, the model is quantized block by block on lowbit's llama runtime
// (lowbit/model/llama_blocks.hpp) instead of from Hessian files:
//
//   1. The text's windows (llama-imatrix's chunks: ctx tokens each, BOS first where
//      the model adds one) are embedded: x, the hidden states entering block 0.
//   2. For block i, in order: q/k/v share one Hessian, accumulated from attn_norm(x);
//      GPTQ each into its planned type and swap the model's weights for the result.
//      attn_output's Hessian comes from the attention output computed with the
//      quantized q/k/v; gate/up share one, from ffn_norm(x + attn_output(att)) with the
//      quantized attn_output; ffn_down's comes from silu(gate) * up of the quantized
//      gate/up. Then x passes through the fully quantized block i: block i+1's input.
//   3. Tensors outside the blocks (token embedding, output matrix) get rtn: the output
//      matrix (when it is its own tensor stored after the blocks) with the importance
//      of output_norm(x) after the last block, the rest without importance (logged).
//
// Memory: one block's Hessians (4 x cols^2 bytes each: n_embd^2 twice, (n_head *
// head_dim)^2 and n_ff^2), the hidden states and attention outputs of every window
// (4 x tokens x (n_embd + n_head * head_dim) bytes), one window's scratch, and the
// quantized bytes of the block being written (docs/cli.md). Results do not depend on
// the thread count.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "lowbit/gptq/hessian.hpp"

namespace lowbit {

struct GptqCalibration {
  std::string text;     // the calibration text (UTF-8), tokenized with the model's tokenizer
  int64_t ctx = 512;    // tokens per window
  int64_t chunks = 0;   // windows used; 0 = every whole window of the text
  std::string dataset;  // names the text in the log
  // Optional: called with each block weight's Hessian just before GPTQ uses it (q/k/v
  // receive the same accumulator, gate/up another).
  std::function<void(const std::string& weight, const std::shared_ptr<const HessianAccumulator>& h)> on_hessian;
};

}  // namespace lowbit
