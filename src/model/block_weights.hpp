#pragma once
// What the calibration drivers share (private to the library): the seven linear
// weights of a llama block and their GGUF names, and the calibration windows of a text
// (sequential GPTQ, the HF GPTQ export, --target-bpw's sensitivity probe).
#include <algorithm>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/model/gptq_calibration.hpp"
#include "lowbit/model/llama.hpp"

namespace lowbit::detail {

// In evaluation order.
inline constexpr const char* kBlockWeights[] = {"attn_q", "attn_k", "attn_v", "attn_output",
                                                "ffn_gate", "ffn_up", "ffn_down"};

inline std::string block_weight_name(int64_t layer, std::string_view part) {
  return "blk." + std::to_string(layer) + "." + std::string(part) + ".weight";
}

struct BlockWeight {
  int64_t layer = 0;
  std::string part;  // one of kBlockWeights
};

// "blk.N.<part>.weight" with <part> one of kBlockWeights; nullopt for any other name.
inline std::optional<BlockWeight> parse_block_weight(std::string_view name) {
  if (!name.starts_with("blk.") || !name.ends_with(".weight")) return std::nullopt;
  const size_t dot = name.find('.', 4);
  if (dot == std::string_view::npos || dot == 4 || dot - 4 > 12) return std::nullopt;
  int64_t layer = 0;
  for (size_t k = 4; k < dot; ++k) {
    if (name[k] < '0' || name[k] > '9') return std::nullopt;
    layer = layer * 10 + (name[k] - '0');
  }
  const std::string_view part = name.substr(dot + 1, name.size() - dot - 1 - 7);
  if (std::find(std::begin(kBlockWeights), std::end(kBlockWeights), part) == std::end(kBlockWeights))
    return std::nullopt;
  return BlockWeight{layer, std::string(part)};
}

// The text's windows as llama-imatrix and lowbit::calibrate cut them: cal.ctx tokens
// each, BOS first where the model adds one, the first cal.chunks (0: every whole one).
// `what` prefixes the errors (a window under 1 token, a negative count, an empty text,
// a text shorter than one window).
inline std::vector<int32_t> calibration_windows(const LlamaModel& m, const GptqCalibration& cal,
                                                const std::string& what, int64_t& windows) {
  if (cal.ctx < 1) throw Error(what + ": the window must be at least 1 token, got " + std::to_string(cal.ctx));
  if (cal.chunks < 0) throw Error(what + ": the window count " + std::to_string(cal.chunks) + " is negative");
  const std::string text = "the text" + (cal.dataset.empty() ? "" : " " + cal.dataset);
  if (cal.text.empty()) throw Error(what + ": " + text + " is empty");
  const Tokenizer& tok = m.tokenizer();
  std::vector<int32_t> tokens = tok.tokenize(cal.text, true, false);
  const auto n = static_cast<int64_t>(tokens.size());
  if (n < cal.ctx)
    throw Error(what + ": " + text + " has " + std::to_string(n) + " tokens, fewer than one window of " +
                std::to_string(cal.ctx));
  windows = cal.chunks > 0 ? std::min(cal.chunks, n / cal.ctx) : n / cal.ctx;
  tokens.resize(static_cast<size_t>(windows * cal.ctx));
  if (tok.add_bos() && tok.bos() >= 0)
    for (int64_t k = 0; k < windows; ++k) tokens[static_cast<size_t>(k * cal.ctx)] = tok.bos();
  return tokens;
}

}  // namespace lowbit::detail
