#pragma once
// --target-bpw's sensitivity measurement (docs/cli.md): how much the model's next-token
// distribution moves when one block weight alone is replaced. Private to the library.
//
// The unmodified model's residual stream entering every block is kept for every
// window, so a weight of block i is measured by running blocks i..n-1 and the output
// only (lowbit/model/llama_blocks.hpp, float32 throughout).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/formats/format.hpp"
#include "lowbit/model/gptq_calibration.hpp"
#include "lowbit/model/llama.hpp"

namespace lowbit::detail {

class KldProbe {
 public:
  // Loads the model with lowbit's runtime (another architecture is an Error naming it),
  // tokenizes the text into cal.chunks windows of cal.ctx tokens (0: every whole one;
  // BOS first where the model adds one; at least one window) and keeps the unmodified
  // model's block inputs and log-probabilities. Memory: 4 x windows x ctx x n_layer x
  // n_embd bytes, plus 8 x windows x (about 128) x n_vocab.
  KldProbe(const std::string& model_path, const GptqCalibration& cal);
  ~KldProbe();

  // Whether `name` is a block weight the runtime can swap (LlamaModel::replace_weight).
  bool can_probe(const std::string& name) const;
  // Mean over the scored positions of every window of KL(original || model with `name`
  // replaced by `bytes` in `format`), in nats; the weight is restored afterwards.
  // Deterministic at any thread count.
  double kld_with(const std::string& name, Format format, std::vector<std::byte> bytes);
  int64_t positions() const { return windows_ * scored(); }

 private:
  // Runs blocks [first, last) on x (one window's residual stream, in place).
  void run_blocks(int64_t first, int64_t last, std::vector<float>& x) const;
  // The row-wise log-softmax of the output logits for the final residual stream x.
  std::vector<double> log_probs(const std::vector<float>& x) const;

  // Every stride-th position of a window is scored (at most about 128 per window),
  // the last one included.
  int64_t stride() const { return std::max<int64_t>(1, ctx_ / 128); }
  int64_t scored() const { return (ctx_ + stride() - 1) / stride(); }
  int64_t position(int64_t i) const { return ctx_ - 1 - (scored() - 1 - i) * stride(); }

  LlamaModel model_;
  int64_t ctx_ = 0, windows_ = 0;
  std::vector<float> block_in_;   // [layer][window] x [ctx x n_embd]
  std::vector<double> base_logp_;  // [window] x [scored positions x n_vocab]
};

}  // namespace lowbit::detail
