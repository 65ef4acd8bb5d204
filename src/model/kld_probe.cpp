#include "model/kld_probe.hpp"

#include "model/block_weights.hpp"

#include <algorithm>
#include <cmath>

#include "lowbit/core/error.hpp"
#include "lowbit/core/parallel.hpp"
#include "lowbit/gptq/hessian.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/kernels/matmul.hpp"
#include "lowbit/model/llama_blocks.hpp"

namespace lowbit::detail {
namespace {

// Row-wise log-softmax in double.
std::vector<double> log_softmax(const std::vector<float>& logits, int64_t rows, int64_t n) {
  std::vector<double> out(logits.size());
  parallel_for(rows, 4, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* x = logits.data() + r * n;
      double mx = x[0];
      for (int64_t i = 1; i < n; ++i) mx = std::max(mx, double(x[i]));
      double sum = 0;
      for (int64_t i = 0; i < n; ++i) sum += std::exp(double(x[i]) - mx);
      const double lse = mx + std::log(sum);
      for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(r * n + i)] = double(x[i]) - lse;
    }
  });
  return out;
}

}  // namespace

KldProbe::KldProbe(const std::string& model_path, const GptqCalibration& cal)
    : model_(LlamaModel::load(model_path)), ctx_(cal.ctx) {
  const std::vector<int32_t> tokens = calibration_windows(model_, cal, "--target-bpw calibration", windows_);
  const LlamaHparams& hp = model_.hparams();
  const int64_t E = hp.n_embd, T = ctx_;
  check_memory_fits(4.0 * double(windows_) * (double(T * hp.n_layer * E) + 2.0 * double(scored() * hp.n_vocab)), "the --target-bpw calibration");
  block_in_.resize(static_cast<size_t>(hp.n_layer * windows_ * T * E));
  base_logp_.resize(static_cast<size_t>(windows_ * scored() * hp.n_vocab));
  const LlamaBlocks blocks(model_);
  for (int64_t k = 0; k < windows_; ++k) {
    const std::vector<int32_t> w(tokens.begin() + k * T, tokens.begin() + (k + 1) * T);
    std::vector<float> x(static_cast<size_t>(T * E));
    blocks.embed(w, MatrixView<float>(x.data(), T, E));
    // Block i's input is kept, then the model runs on from there.
    for (int64_t il = 0; il < hp.n_layer; ++il) {
      std::copy(x.begin(), x.end(), block_in_.begin() + (il * windows_ + k) * T * E);
      run_blocks(il, il + 1, x);
    }
    const std::vector<double> lp = log_probs(x);
    std::copy(lp.begin(), lp.end(), base_logp_.begin() + k * scored() * hp.n_vocab);
  }
}

KldProbe::~KldProbe() = default;

void KldProbe::run_blocks(int64_t first, int64_t last, std::vector<float>& x) const {
  const LlamaHparams& hp = model_.hparams();
  const int64_t E = hp.n_embd, T = ctx_, qd = hp.n_head * hp.head_dim;
  const LlamaBlocks blocks(model_);
  std::vector<float> h(static_cast<size_t>(T * E)), att(static_cast<size_t>(T * qd)), a(static_cast<size_t>(T * hp.n_ff));
  const MatrixView<float> xv(x.data(), T, E), hv(h.data(), T, E), attv(att.data(), T, qd), av(a.data(), T, hp.n_ff);
  for (int64_t il = first; il < last; ++il) {
    blocks.attn_input(il, xv, hv);
    blocks.attention(il, hv, attv);
    blocks.attn_residual(il, attv, xv);
    blocks.ffn_input(il, xv, hv);
    blocks.ffn_act(il, hv, av);
    blocks.ffn_residual(il, av, xv);
  }
}

std::vector<double> KldProbe::log_probs(const std::vector<float>& x) const {
  const LlamaHparams& hp = model_.hparams();
  const int64_t E = hp.n_embd, T = ctx_, S = scored();
  std::vector<float> all(static_cast<size_t>(T * E)), h(static_cast<size_t>(S * E));
  LlamaBlocks(model_).output_input(ConstMatrixView<float>(x.data(), T, E), MatrixView<float>(all.data(), T, E));
  // The scored positions only: the vocabulary projection is the largest product.
  for (int64_t i = 0; i < S; ++i) std::copy_n(all.data() + position(i) * E, E, h.data() + i * E);
  const MatrixView<float> hv(h.data(), S, E);
  const GgufTensorInfo* out = model_.file().find_tensor("output.weight");
  if (out == nullptr) out = &model_.file().tensor("token_embd.weight");  // tied
  std::vector<float> logits(static_cast<size_t>(S * hp.n_vocab));
  matmul(out->format, model_.file().data(*out), out->rows(), out->row_length(), hv,
         MatrixView<float>(logits.data(), S, hp.n_vocab), {MatmulPath::dequant});
  return log_softmax(logits, S, hp.n_vocab);
}

bool KldProbe::can_probe(const std::string& name) const {
  return parse_block_weight(name) && model_.file().find_tensor(name) != nullptr;
}

double KldProbe::kld_with(const std::string& name, Format format, std::vector<std::byte> bytes) {
  if (!can_probe(name)) throw Error("--target-bpw calibration: '" + name + "' is not a block weight it can swap");
  const int64_t layer = parse_block_weight(name)->layer, E = model_.hparams().n_embd, V = model_.hparams().n_vocab;
  model_.replace_weight(name, format, std::move(bytes));
  double total = 0;
  try {
    for (int64_t k = 0; k < windows_; ++k) {
      const auto in = block_in_.begin() + (layer * windows_ + k) * ctx_ * E;
      std::vector<float> x(in, in + ctx_ * E);
      run_blocks(layer, model_.hparams().n_layer, x);
      const std::vector<double> lp = log_probs(x);
      const int64_t S = scored();
      const double* base = base_logp_.data() + k * S * V;
      std::vector<double> per(static_cast<size_t>(S));
      parallel_for(S, 4, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          double s = 0;
          for (int64_t v = 0; v < V; ++v) {
            const double b = base[r * V + v];
            s += std::exp(b) * (b - lp[static_cast<size_t>(r * V + v)]);
          }
          per[static_cast<size_t>(r)] = std::max(0.0, s);
        }
      });
      for (double s : per) total += s;  // in order: the same sum at any thread count
    }
  } catch (...) {
    model_.restore_weight(name);
    throw;
  }
  model_.restore_weight(name);
  return total / double(positions());
}

}  // namespace lowbit::detail
