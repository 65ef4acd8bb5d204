#include "model/sequential_gptq.hpp"

#include "model/block_weights.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "common/log.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/formats/quantize.hpp"
#include "lowbit/model/llama_blocks.hpp"

namespace lowbit::detail {
namespace {

std::string weight_name(int64_t layer, const char* w) { return block_weight_name(layer, w); }

std::vector<int32_t> window_tokens(const LlamaModel& m, const GptqCalibration& cal, int64_t& windows) {
  return calibration_windows(m, cal, "calibration", windows);
}

}  // namespace

void check_calibration(const GgufFile& model, const GptqCalibration& cal) {
  const LlamaModel m = LlamaModel::load(model.path());
  int64_t windows = 0;
  window_tokens(m, cal, windows);
}

SequentialGptq::SequentialGptq(const GgufFile& model, const QuantizePlan& plan, const GptqCalibration& cal,
                               QuantizeWithHessian quantize, bool every_block_weight)
    : file_(model), plan_(plan), cal_(cal), quantize_(std::move(quantize)), llama_(LlamaModel::load(model.path())) {
  const LlamaHparams& hp = llama_.hparams();
  ctx_ = cal.ctx;
  const std::vector<int32_t> tokens = window_tokens(llama_, cal, windows_);
  const int64_t n = windows_ * ctx_;
  const int64_t qd = hp.n_head * hp.head_dim;
  check_memory_fits(4.0 * double(n) * double(hp.n_embd + qd), "the calibration activations");
  x_.assign(static_cast<size_t>(n * hp.n_embd), 0.0f);
  att_.assign(static_cast<size_t>(n * qd), 0.0f);
  LlamaBlocks(llama_).embed(tokens, MatrixView<float>(x_.data(), n, hp.n_embd));

  std::map<std::string, size_t> index;
  for (size_t i = 0; i < plan.tensors.size(); ++i) index[plan.tensors[i].name] = i;
  for (int64_t il = 0; il < hp.n_layer; ++il)
    for (const char* w : kBlockWeights) {
      const std::string name = weight_name(il, w);
      const size_t i = index.at(name);  // LlamaModel::load checked that it exists
      if (every_block_weight || plan.tensors[i].converts()) covered_[name] = i;
    }
  output_name_ = llama_.linear_weights().back();
  logger().info("sequential GPTQ: {} window(s) of {} tokens{}, {} blocks; activations {:.1f} MiB", windows_, ctx_,
                cal.dataset.empty() ? "" : " of " + cal.dataset, hp.n_layer,
                4.0 * double(x_.size() + att_.size()) / (1 << 20));
}

SequentialGptq::~SequentialGptq() = default;

bool SequentialGptq::covers(const std::string& name) const { return covered_.contains(name); }

void SequentialGptq::skip(const std::string& name) {
  skipped_.insert(name);
  ready_.erase(name);
}

std::vector<std::byte> SequentialGptq::take(const std::string& name) {
  const auto c = covered_.find(name);
  if (c == covered_.end()) throw Error("sequential GPTQ: '" + name + "' is not a block weight it quantizes");
  if (taken_.contains(name)) throw Error("sequential GPTQ: '" + name + "' was already taken");
  const int64_t layer = std::stoll(name.substr(4, name.find('.', 4) - 4));  // "blk.N."
  while (next_ <= layer) run_block(next_++);
  auto it = ready_.find(name);
  if (it == ready_.end()) throw Error("sequential GPTQ: '" + name + "' was skipped");
  std::vector<std::byte> out = std::move(it->second);
  ready_.erase(it);
  taken_.insert(name);
  return out;
}

void SequentialGptq::quantize_group(int64_t layer, std::initializer_list<const char*> names,
                                    const std::shared_ptr<const HessianAccumulator>& h) {
  for (const char* w : names) {
    const std::string name = weight_name(layer, w);
    const auto c = covered_.find(name);
    if (c == covered_.end()) continue;  // kept as stored: the runtime goes on with the file's weight
    const PlannedTensor& t = plan_.tensors[c->second];
    const GgufTensorInfo& info = file_.tensors()[c->second];
    if (cal_.on_hessian) cal_.on_hessian(name, h);
    std::vector<float> wf(static_cast<size_t>(info.elements()));
    dequantize(info.format, file_.data(info), {wf.data(), info.rows(), info.row_length()});
    std::vector<std::byte> bytes;
    try {
      bytes = quantize_(t, wf, h);
    } catch (const QuantizeCancelled&) {
      throw;
    } catch (const Error& e) {
      throw Error("tensor '" + t.name + "' (" + std::string(traits(t.from).name) + " -> " +
                  std::string(traits(t.to()).name) + "): " + e.what());
    }
    llama_.replace_weight(name, t.to(), bytes);
    if (!skipped_.contains(name)) ready_[name] = std::move(bytes);
  }
}

void SequentialGptq::run_block(int64_t il) {
  const LlamaHparams& hp = llama_.hparams();
  const LlamaBlocks blocks(llama_);
  const int64_t T = ctx_, E = hp.n_embd, qd = hp.n_head * hp.head_dim, F = hp.n_ff;
  std::vector<float> hbuf(static_cast<size_t>(T * E)), abuf(static_cast<size_t>(T * F));
  const MatrixView<float> h(hbuf.data(), T, E), a(abuf.data(), T, F);
  const auto x = [&](int64_t k) { return MatrixView<float>(x_.data() + k * T * E, T, E); };
  const auto att = [&](int64_t k) { return MatrixView<float>(att_.data() + k * T * qd, T, qd); };
  logger().info("sequential GPTQ: block {} of {}", il, hp.n_layer);

  // q/k/v read attn_norm(x); the block's other inputs depend on weights quantized
  // before them (true-sequential), so each group's Hessian waits for the one before.
  auto H = std::make_shared<HessianAccumulator>(E);
  for (int64_t k = 0; k < windows_; ++k) {
    blocks.attn_input(il, x(k), h);
    H->add(h);
  }
  quantize_group(il, {"attn_q", "attn_k", "attn_v"}, H);

  H = std::make_shared<HessianAccumulator>(qd);
  for (int64_t k = 0; k < windows_; ++k) {
    blocks.attn_input(il, x(k), h);
    blocks.attention(il, h, att(k));
    H->add(att(k));
  }
  quantize_group(il, {"attn_output"}, H);

  H = std::make_shared<HessianAccumulator>(E);
  for (int64_t k = 0; k < windows_; ++k) {
    blocks.attn_residual(il, att(k), x(k));
    blocks.ffn_input(il, x(k), h);
    H->add(h);
  }
  quantize_group(il, {"ffn_gate", "ffn_up"}, H);

  H = std::make_shared<HessianAccumulator>(F);
  for (int64_t k = 0; k < windows_; ++k) {
    blocks.ffn_input(il, x(k), h);
    blocks.ffn_act(il, h, a);
    H->add(a);
  }
  quantize_group(il, {"ffn_down"}, H);
  H.reset();

  for (int64_t k = 0; k < windows_; ++k) {
    blocks.ffn_input(il, x(k), h);
    blocks.ffn_act(il, h, a);
    blocks.ffn_residual(il, a, x(k));
  }
  // The block is done: later blocks never read its weights again. Drop the
  // replacements and the pages of the runtime's own mapping, so memory stays bounded
  // by a block, not by the model.
  for (const char* w : kBlockWeights) {
    const std::string name = weight_name(il, w);
    llama_.restore_weight(name);
    if (const GgufTensorInfo* t = llama_.file().find_tensor(name)) llama_.file().release(*t);
  }
}

std::vector<float> SequentialGptq::outside_importance(const std::string& name, std::string& why) {
  if (name != output_name_) {
    why = "outside the blocks, no calibration input";
    return {};
  }
  while (next_ < llama_.hparams().n_layer) run_block(next_++);
  const LlamaBlocks blocks(llama_);
  const int64_t T = ctx_, E = llama_.hparams().n_embd;
  std::vector<float> hbuf(static_cast<size_t>(T * E));
  std::vector<double> sum(static_cast<size_t>(E), 0.0);
  for (int64_t k = 0; k < windows_; ++k) {
    blocks.output_input(ConstMatrixView<float>(x_.data() + k * T * E, T, E), MatrixView<float>(hbuf.data(), T, E));
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = 0; j < E; ++j) sum[static_cast<size_t>(j)] += double(hbuf[t * E + j]) * hbuf[t * E + j];
  }
  std::vector<float> imp(sum.size());
  for (size_t j = 0; j < sum.size(); ++j) imp[j] = static_cast<float>(sum[j] / double(windows_ * T));
  why = "importance of output_norm(x) after the last quantized block";
  return imp;
}

}  // namespace lowbit::detail
