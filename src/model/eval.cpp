#include "lowbit/model/eval.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <span>
#include <string>

#include "lowbit/core/error.hpp"
#include "lowbit/core/parallel.hpp"

namespace lowbit {
namespace {

using Clock = std::chrono::steady_clock;

// log-softmax pieces in double: max and log(sum exp(x - max)).
struct LogSumExp {
  double max = 0, lse = 0;  // log p_i = x_i - max - lse
};

LogSumExp log_sum_exp(const float* x, int64_t n) {
  double mx = x[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max(mx, static_cast<double>(x[i]));
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - mx);
  return {mx, std::log(sum)};
}

int64_t argmax(const float* x, int64_t n) { return std::max_element(x, x + n) - x; }

}  // namespace

EvalResult evaluate(const LlamaModel& model, std::string_view text, const LlamaModel* base,
                    const EvalOptions& options) {
  const int64_t ctx = options.ctx;
  if (ctx < 2) throw Error("eval: the context must be at least 2 tokens, got " + std::to_string(ctx));
  const int64_t n_vocab = model.hparams().n_vocab;
  if (base != nullptr && base->hparams().n_vocab != n_vocab)
    throw Error("eval: the base model's vocabulary has " + std::to_string(base->hparams().n_vocab) +
                " tokens, the model's " + std::to_string(n_vocab));
  const Tokenizer& tok = model.tokenizer();
  const std::vector<int32_t> tokens = tok.tokenize(text, true, false);
  EvalResult r;
  r.tokens = static_cast<int64_t>(tokens.size());
  r.ctx = ctx;
  if (r.tokens < 2 * ctx)
    throw Error("eval: the text has " + std::to_string(r.tokens) + " tokens; a context of " + std::to_string(ctx) +
                " needs at least " + std::to_string(2 * ctx));
  const int64_t available = r.tokens / ctx;
  r.chunks = options.chunks > 0 ? std::min(options.chunks, available) : available;
  r.has_base = base != nullptr;

  LlamaContext lc(model, ctx, options.precision);
  std::optional<LlamaContext> bc;
  // The base with the same arithmetic, so a model against itself gives KLD 0 at every precision.
  if (base != nullptr) bc.emplace(*base, ctx, options.precision);
  const int64_t first = ctx / 2, per = ctx - 1 - first;
  std::vector<double> kld, base_nll;
  int64_t same = 0;
  double pp_seconds = 0;
  for (int64_t c = 0; c < r.chunks; ++c) {
    std::vector<int32_t> window(tokens.begin() + c * ctx, tokens.begin() + (c + 1) * ctx);
    if (tok.add_bos() && tok.bos() >= 0) window[0] = tok.bos();
    lc.clear();
    const auto t0 = Clock::now();
    const std::vector<float> logits = lc.decode(window, true);
    pp_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    std::vector<float> blogits;
    if (bc) {
      bc->clear();
      blogits = bc->decode(window, true);
    }
    std::vector<double> nll(static_cast<size_t>(per)), bnll(static_cast<size_t>(per)), kl(static_cast<size_t>(per));
    std::vector<char> agree(static_cast<size_t>(per));
    parallel_for(per, 8, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t pos = first + i;
        const int32_t next = tokens[static_cast<size_t>(c * ctx + pos + 1)];
        const float* row = logits.data() + pos * n_vocab;
        const LogSumExp a = log_sum_exp(row, n_vocab);
        nll[static_cast<size_t>(i)] = -(row[next] - a.max - a.lse);
        if (!bc) continue;
        const float* brow = blogits.data() + pos * n_vocab;
        const LogSumExp b = log_sum_exp(brow, n_vocab);
        bnll[static_cast<size_t>(i)] = -(brow[next] - b.max - b.lse);
        double sum = 0;
        for (int64_t v = 0; v < n_vocab; ++v) {
          const double lb = brow[v] - b.max - b.lse, la = row[v] - a.max - a.lse;
          sum += std::exp(lb) * (lb - la);
        }
        kl[static_cast<size_t>(i)] = std::max(0.0, sum);
        agree[static_cast<size_t>(i)] = argmax(row, n_vocab) == argmax(brow, n_vocab);
      }
    });
    r.nll.insert(r.nll.end(), nll.begin(), nll.end());
    if (bc) {
      base_nll.insert(base_nll.end(), bnll.begin(), bnll.end());
      kld.insert(kld.end(), kl.begin(), kl.end());
      for (char a : agree) same += a;
    }
    if (options.progress) options.progress(c + 1, r.chunks);
  }
  r.scored = static_cast<int64_t>(r.nll.size());
  const auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0.0 : s / static_cast<double>(v.size());
  };
  r.nll_mean = mean(r.nll);
  r.ppl = std::exp(r.nll_mean);
  double var = 0;
  for (double x : r.nll) var += (x - r.nll_mean) * (x - r.nll_mean);
  if (r.scored > 1) r.ppl_stderr = r.ppl * std::sqrt(var / static_cast<double>(r.scored - 1) / static_cast<double>(r.scored));
  r.pp_tokens_per_s = pp_seconds > 0 ? static_cast<double>(r.chunks * ctx) / pp_seconds : 0;
  if (bc) {
    r.base_ppl = std::exp(mean(base_nll));
    r.kld_mean = mean(kld);
    std::vector<double> sorted = kld;
    std::sort(sorted.begin(), sorted.end());
    const double at = 0.99 * static_cast<double>(sorted.size() - 1);
    const auto lo = static_cast<size_t>(at);
    const size_t hi = std::min(lo + 1, sorted.size() - 1);
    r.kld_p99 = sorted[lo] + (sorted[hi] - sorted[lo]) * (at - static_cast<double>(lo));
    r.top1 = static_cast<double>(same) / static_cast<double>(r.scored);
  }
  if (options.tg_tokens > 0) {
    const int64_t n = std::min({options.tg_tokens, ctx, r.tokens});
    lc.clear();
    const auto t0 = Clock::now();
    for (int64_t i = 0; i < n; ++i) lc.decode(std::span<const int32_t>(tokens.data() + i, 1), false);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    r.tg_tokens_per_s = s > 0 ? static_cast<double>(n) / s : 0;
  }
  return r;
}

}  // namespace lowbit
