#include "lowbit/model/hf_gptq_export.hpp"

#include <tbb/task_arena.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/log.hpp"
#include "io/file_io.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/quantize.hpp"
#include "lowbit/gptq/quantize_config.hpp"
#include "lowbit/gptq/target.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/hf_checkpoint.hpp"
#include "lowbit/io/safetensors.hpp"
#include "lowbit/model/llama.hpp"
#include "model/block_weights.hpp"
#include "model/sequential_gptq.hpp"

namespace lowbit {
namespace {

// GGUF block weight -> transformers module, per layer.
const std::map<std::string, std::string, std::less<>>& block_linear_names() {
  static const std::map<std::string, std::string, std::less<>> m = {
      {"attn_q", "self_attn.q_proj"}, {"attn_k", "self_attn.k_proj"}, {"attn_v", "self_attn.v_proj"},
      {"attn_output", "self_attn.o_proj"}, {"ffn_gate", "mlp.gate_proj"}, {"ffn_up", "mlp.up_proj"},
      {"ffn_down", "mlp.down_proj"}};
  return m;
}

// "blk.N.rest" -> (N, "rest"); false for any other name.
bool split_block_name(const std::string& name, std::string& layer, std::string& rest) {
  if (!name.starts_with("blk.")) return false;
  const size_t dot = name.find('.', 4);
  if (dot == std::string::npos || dot == 4) return false;
  for (size_t k = 4; k < dot; ++k)
    if (name[k] < '0' || name[k] > '9') return false;
  layer = name.substr(4, dot - 4);
  rest = name.substr(dot + 1);
  return true;
}

// llama.cpp's converter stores each head's q/k rows with the two rotary halves
// interleaved (GGUF row h*d + 2i + j holds Hugging Face row h*d + j*d/2 + i), so that
// its rope can rotate adjacent pairs. The Hugging Face row of GGUF row r:
int64_t hf_row_of(int64_t r, int64_t head_dim) {
  const int64_t h = r / head_dim, k = r % head_dim, half = head_dim / 2;
  return h * head_dim + (k % 2) * half + k / 2;
}

std::vector<float> permute_rows(const std::vector<float>& w, int64_t rows, int64_t cols, int64_t head_dim,
                                bool to_hf) {
  std::vector<float> out(w.size());
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t h = hf_row_of(r, head_dim);
    const int64_t src = to_hf ? r : h, dst = to_hf ? h : r;
    std::copy_n(w.data() + src * cols, cols, out.data() + dst * cols);
  }
  return out;
}

// Seven significant digits, as the float the GGUF stores was written from.
double short_float(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.7g", double(v));
  return std::strtod(buf, nullptr);
}

std::string config_json(const LlamaHparams& hp, const Tokenizer& tok, const GsqConfig& gsq, const GptqConfig& gptq,
                        int version) {
  nlohmann::ordered_json j;
  j["architectures"] = {"LlamaForCausalLM"};
  j["model_type"] = "llama";
  j["hidden_size"] = hp.n_embd;
  j["intermediate_size"] = hp.n_ff;
  j["num_hidden_layers"] = hp.n_layer;
  j["num_attention_heads"] = hp.n_head;
  j["num_key_value_heads"] = hp.n_head_kv;
  j["head_dim"] = hp.head_dim;
  j["hidden_act"] = "silu";
  j["max_position_embeddings"] = hp.n_ctx_train > 0 ? hp.n_ctx_train : 2048;
  j["rms_norm_eps"] = short_float(hp.rms_eps);
  j["rope_theta"] = short_float(hp.rope_freq_base);
  if (hp.rope_freq_scale != 1.0f)
    j["rope_scaling"] = {{"type", "linear"}, {"factor", short_float(1.0f / hp.rope_freq_scale)}};
  else
    j["rope_scaling"] = nullptr;
  j["attention_bias"] = false;
  j["mlp_bias"] = false;
  j["tie_word_embeddings"] = hp.tied_output;
  j["vocab_size"] = hp.n_vocab;
  if (tok.bos() >= 0) j["bos_token_id"] = tok.bos();
  if (tok.eos() >= 0) j["eos_token_id"] = tok.eos();
  j["torch_dtype"] = "float16";
  j["quantization_config"] = nlohmann::ordered_json::parse(quantize_config_json(gsq, gptq, version));
  return j.dump(2) + "\n";
}

struct LayerPlan {
  std::string gguf, hf;  // hf: the module name ("model.layers.0.self_attn.q_proj")
  int64_t rows = 0, cols = 0;
  int64_t head_dim = 0;  // q/k: rows are permuted per head of this size; 0 otherwise
};

void check_layer(const LayerPlan& l, const GsqConfig& gsq) {
  const std::string what = "tensor '" + l.gguf + "' (" + l.hf + ", " + std::to_string(l.rows) + " x " +
                           std::to_string(l.cols) + ")";
  const int64_t g = gsq.resolved_group(l.cols);
  if (l.cols % g != 0) {
    std::string fits;
    for (int64_t s : {256, 128, 64, 32})
      if (l.cols % s == 0) fits += std::to_string(s) + ", ";
    throw Error("HF GPTQ export: " + what + ": its " + std::to_string(l.cols) + " input features hold no whole groups of " +
                std::to_string(g) + " (group sizes that fit: " + fits + "or 0 for one group per row)");
  }
  if ((l.cols * gsq.bits) % 32 != 0 || (l.rows * gsq.bits) % 32 != 0)
    throw Error("HF GPTQ export: " + what + ": GPTQ checkpoints pack " + std::to_string(gsq.bits) +
                "-bit codes into 32-bit words along both dimensions, which these do not fill");
  if (l.head_dim && (l.head_dim % 2 != 0 || l.rows % l.head_dim != 0))
    throw Error("HF GPTQ export: " + what + ": rows are not whole heads of even size " + std::to_string(l.head_dim));
}

template <class T>
std::vector<std::byte> to_bytes(const std::vector<T>& v) {
  std::vector<std::byte> b(v.size() * sizeof(T));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// A dense tensor's values in fp16 (an Error naming it for a value beyond fp16's range).
std::vector<std::byte> dense_fp16(const GgufFile& file, const std::string& name) {
  const GgufTensorInfo& t = file.tensor(name);
  std::vector<float> v(static_cast<size_t>(t.elements()));
  dequantize(t.format, file.data(t), {v.data(), t.rows(), t.row_length()});
  file.release(t);
  std::vector<uint16_t> h(v.size());
  for (size_t k = 0; k < v.size(); ++k) {
    h[k] = fp32_to_fp16(v[k]);
    if (std::isfinite(v[k]) && !std::isfinite(fp16_to_fp32(h[k])))
      throw Error("HF GPTQ export: tensor '" + name + "' holds " + std::to_string(v[k]) + " (element " +
                  std::to_string(k) + "), beyond fp16's range");
  }
  return to_bytes(h);
}

template <class F>
auto in_arena(int threads, F&& f) {
  if (threads < 0) throw Error("HF GPTQ export: thread count " + std::to_string(threads) + " is negative");
  if (threads == 0) return f();
  tbb::task_arena arena(threads);
  return arena.execute(f);
}

}  // namespace

std::string hf_llama_tensor_name(const std::string& g) {
  if (g == "token_embd.weight") return "model.embed_tokens.weight";
  if (g == "output_norm.weight") return "model.norm.weight";
  if (g == "output.weight") return "lm_head.weight";
  std::string layer, rest;
  if (!split_block_name(g, layer, rest) || !rest.ends_with(".weight")) return {};
  const std::string base = rest.substr(0, rest.size() - 7), prefix = "model.layers." + layer + ".";
  if (base == "attn_norm") return prefix + "input_layernorm.weight";
  if (base == "ffn_norm") return prefix + "post_attention_layernorm.weight";
  const auto it = block_linear_names().find(base);
  return it == block_linear_names().end() ? std::string{} : prefix + it->second + ".weight";
}

HfGptqExportReport export_hf_gptq(const std::filesystem::path& in, const std::filesystem::path& dir,
                                  const HfGptqExportOptions& o) {
  GsqConfig gsq = o.gsq;
  gsq.validate();
  if (gsq.scheme == GsqScheme::asymmetric_float)
    throw Error("HF GPTQ export: " + gsq.describe() + " uses float minimums; GPTQ checkpoints store integer zeros");
  if (gsq.bits != 2 && gsq.bits != 3 && gsq.bits != 4 && gsq.bits != 8)
    throw Error("HF GPTQ export: " + std::to_string(gsq.bits) + "-bit codes (GPTQ checkpoints hold 2, 3, 4 or 8 bits)");
  if (gsq.double_quant || gsq.scale_storage != ScaleStorage::fp16)
    throw Error("HF GPTQ export: GPTQ checkpoints store plain fp16 scales (" + gsq.describe() + ")");
  o.gptq.validate();
  const int version = o.format_version != 0 ? o.format_version : gsq.scheme == GsqScheme::symmetric ? 1 : 2;
  if (version != 1 && version != 2)
    throw Error("HF GPTQ export: checkpoint format version " + std::to_string(o.format_version) + " (1 or 2)");
  if (std::filesystem::exists(dir) && !std::filesystem::is_directory(dir))
    throw Error("HF GPTQ export: '" + dir.string() + "' exists and is not a folder");

  const GgufFile file = GgufFile::open(in);
  const LlamaModel probe = LlamaModel::load(in);  // names an unsupported architecture
  const LlamaHparams hp = probe.hparams();

  // Every tensor's destination, checked before any work.
  QuantizePlan plan;
  std::vector<LayerPlan> layers;
  std::vector<std::string> dense;
  int64_t total = 0;
  for (const GgufTensorInfo& t : file.tensors()) {
    PlannedTensor p;
    p.name = t.name;
    p.shape = t.shape;
    p.from = t.format;
    p.plan.format = Format::F32;  // what the runtime goes on with: the decoded GPTQ result
    plan.tensors.push_back(p);
    if (t.name == "rope_freqs.weight") {
      detail::logger().warn("HF GPTQ export: '{}' has no Hugging Face tensor (transformers computes it from config.json's "
                    "rope_scaling, which the GGUF does not record: copy it from the source model's config.json)",
                    t.name);
      continue;
    }
    const std::string hf = hf_llama_tensor_name(t.name);
    if (hf.empty()) throw Error("HF GPTQ export: tensor '" + t.name + "' has no LlamaForCausalLM name");
    if (!detail::parse_block_weight(t.name)) {
      dense.push_back(t.name);
      continue;
    }
    LayerPlan l;
    l.gguf = t.name;
    l.hf = hf.substr(0, hf.size() - 7);
    l.rows = t.rows();
    l.cols = t.row_length();
    if (t.name.ends_with(".attn_q.weight") || t.name.ends_with(".attn_k.weight")) l.head_dim = hp.head_dim;
    check_layer(l, gsq);
    total += l.rows * l.cols;
    layers.push_back(l);
  }

  // model.safetensors in production order: the dense tensors, then the layers block by
  // block (q, k, v, o, gate, up, down), four tensors each, streamed as they are made.
  SafetensorsStreamWriter writer;
  writer.set_metadata("format", "pt");
  writer.set_metadata("quantized_by", "lowbit");
  for (const std::string& name : dense) {
    const GgufTensorInfo& t = file.tensor(name);
    std::vector<uint64_t> shape;  // Hugging Face lists dimensions outermost first, GGUF innermost first
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) shape.push_back(static_cast<uint64_t>(*it));
    writer.declare(hf_llama_tensor_name(name), SafetensorsDtype::F16, shape);
  }
  std::map<std::string, const LayerPlan*> by_name;
  for (const LayerPlan& l : layers) by_name[l.gguf] = &l;
  std::vector<const LayerPlan*> order;
  for (int64_t il = 0; il < hp.n_layer; ++il)
    for (const char* w : detail::kBlockWeights) {  // the checkpoint's order too
      const auto it = by_name.find(detail::block_weight_name(il, w));
      if (it == by_name.end()) continue;
      const LayerPlan& l = *it->second;
      const auto in = static_cast<uint64_t>(l.cols), out = static_cast<uint64_t>(l.rows);
      const auto bits = static_cast<uint64_t>(gsq.bits), groups = in / static_cast<uint64_t>(gsq.resolved_group(l.cols));
      writer.declare(l.hf + ".qweight", SafetensorsDtype::I32, {in * bits / 32, out});
      writer.declare(l.hf + ".qzeros", SafetensorsDtype::I32, {groups, out * bits / 32});
      writer.declare(l.hf + ".scales", SafetensorsDtype::F16, {groups, out});
      writer.declare(l.hf + ".g_idx", SafetensorsDtype::I32, {in});
      order.push_back(&l);
    }
  if (order.size() != layers.size()) throw Error("HF GPTQ export: block weights outside blk.0 .. blk." +
                                                 std::to_string(hp.n_layer - 1));

  HfGptqExportReport report;
  report.format_version = version;
  std::map<std::string, HfGptqTensors> quantized;  // made, not yet written: one block at most
  double code_bits = 0;
  int64_t done = 0;
  const bool created = !std::filesystem::exists(dir);
  std::error_code ec;
  std::filesystem::create_directory(dir, ec);
  if (ec && !std::filesystem::is_directory(dir))
    throw Error("HF GPTQ export: cannot create the folder '" + dir.string() + "': " + ec.message());
  try {
    in_arena(o.threads, [&] {
      detail::SequentialGptq seq(
          file, plan, o.calibration,
          [&](const PlannedTensor& t, const std::vector<float>& w, const std::shared_ptr<const HessianAccumulator>& h) {
            const LayerPlan& l = *by_name.at(t.name);
            const std::vector<float> hf_w = l.head_dim ? permute_rows(w, l.rows, l.cols, l.head_dim, true) : w;
            const std::vector<float> imp =
                gsq.search == ScaleSearch::importance ? h->importance() : std::vector<float>{};
            GsqTarget target(gsq, imp);
            gptq_solve(o.gptq, ConstMatrixView<float>(hf_w.data(), l.rows, l.cols), *h, target);
            GsqResult r = target.result();
            code_bits += r.bits_per_weight() * double(l.rows * l.cols);
            quantized[l.hf] = to_hf_gptq(r, version);
            // The runtime goes on with exactly what the checkpoint holds, in GGUF order.
            std::vector<float> decoded(static_cast<size_t>(l.rows * l.cols));
            gsq_dequantize(r, MatrixView<float>(decoded.data(), l.rows, l.cols));
            if (l.head_dim) decoded = permute_rows(decoded, l.rows, l.cols, l.head_dim, false);
            std::vector<std::byte> bytes(decoded.size() * sizeof(float));
            std::memcpy(bytes.data(), decoded.data(), bytes.size());
            return bytes;
          },
          /*every_block_weight=*/true);
      writer.write(dir / "model.safetensors", [&](size_t i) -> std::vector<std::byte> {
        if (i < dense.size()) return dense_fp16(file, dense[i]);
        const LayerPlan& l = *order[(i - dense.size()) / 4];
        const size_t part = (i - dense.size()) % 4;
        if (part == 0) {
          seq.take(l.gguf);  // runs the block on its first weight; the rest are then ready
          done += l.rows * l.cols;
          if (o.progress) o.progress(done, total);
        }
        const HfGptqTensors& q = quantized.at(l.hf);
        std::vector<std::byte> bytes = part == 0   ? to_bytes(q.qweight)
                                       : part == 1 ? to_bytes(q.qzeros)
                                       : part == 2 ? to_bytes(q.scales)
                                                   : to_bytes(q.g_idx);
        if (part == 3) quantized.erase(l.hf);
        return bytes;
      });
    });
    const std::string qconfig = quantize_config_json(gsq, o.gptq, version);
    io_detail::write_atomically(dir / "quantize_config.json", "HF GPTQ export: quantize_config.json",
                                [&](io_detail::FileSink& s) { s.put(qconfig.data(), qconfig.size()); });
    const std::string config = config_json(hp, probe.tokenizer(), gsq, o.gptq, version);
    io_detail::write_atomically(dir / "config.json", "HF GPTQ export: config.json",
                                [&](io_detail::FileSink& s) { s.put(config.data(), config.size()); });
  } catch (...) {
    if (created) std::filesystem::remove(dir, ec);  // only when still empty
    throw;
  }
  report.files = {dir / "model.safetensors", dir / "quantize_config.json", dir / "config.json"};
  report.quantized_layers = static_cast<int64_t>(layers.size());
  report.dense_tensors = static_cast<int64_t>(dense.size());
  report.bytes = std::filesystem::file_size(dir / "model.safetensors");
  report.bits_per_weight = total ? code_bits / double(total) : 0.0;
  return report;
}

}  // namespace lowbit
