#pragma once
// Perplexity, KL divergence against a base model, and speed, on the windows
// llama.cpp's llama-perplexity uses (docs/runtime.md):
//   * the text is tokenized once (BOS first where the model's GGUF asks for it);
//   * window i covers tokens [i*ctx, (i+1)*ctx), evaluated from an empty KV cache,
//     its first token replaced by BOS when the model adds one;
//   * the logits at positions ctx/2 ... ctx-2 of each window are scored against the
//     token that follows: ctx/2 - 1 scored tokens per window, every one seeing at
//     least ctx/2 tokens of context;
//   * at least 2*ctx tokens are needed, as in llama-perplexity.
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "lowbit/model/llama.hpp"

namespace lowbit {

struct EvalOptions {
  int64_t ctx = 512;       // window length in tokens
  int64_t chunks = 0;      // windows to evaluate; 0 = every whole window of the text
  int64_t tg_tokens = 32;  // single-token decode steps timed for tg_tokens_per_s (0: skip)
  // How the linear layers of the evaluated model and of the base multiply (both the
  // same, as llama-perplexity does): LinearPrecision in lowbit/model/llama.hpp.
  LinearPrecision precision = LinearPrecision::automatic;
  // Called after each window with (windows done, windows in all).
  std::function<void(int64_t, int64_t)> progress;
};

struct EvalResult {
  int64_t tokens = 0;  // tokens of the whole text
  int64_t chunks = 0;  // windows evaluated
  int64_t ctx = 0;
  int64_t scored = 0;      // tokens scored
  double nll_mean = 0;     // mean negative log-likelihood (nats) of the scored tokens
  double ppl = 0;          // exp(nll_mean)
  double ppl_stderr = 0;   // standard error of ppl (delta method: ppl * sd(nll) / sqrt(n))
  std::vector<double> nll;  // per scored token, window by window

  bool has_base = false;  // the rest needs a base model
  double base_ppl = 0;
  double kld_mean = 0;  // mean over scored positions of KL(base || model), nats
  double kld_p99 = 0;   // 99th percentile of the same (linear interpolation between order statistics)
  double top1 = 0;      // fraction of scored positions where both models' argmax agree

  double pp_tokens_per_s = 0;  // model's window evaluation, all positions at once
  double tg_tokens_per_s = 0;  // model's decode one token at a time (0 when tg_tokens is 0)
};

// Evaluates `model` (and `base`, when not null, on the same tokens) on `text`.
// Throws Error for a text shorter than 2*ctx tokens, ctx < 2, or a base model whose
// vocabulary size differs.
EvalResult evaluate(const LlamaModel& model, std::string_view text, const LlamaModel* base,
                    const EvalOptions& options);

}  // namespace lowbit
