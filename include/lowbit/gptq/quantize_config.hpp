#pragma once
// quantize_config.json for a Hugging Face GPTQ checkpoint (AutoGPTQ / GPTQModel).
#include <string>

#include "lowbit/gptq/solver.hpp"
#include "lowbit/gsq/config.hpp"

namespace lowbit {

// {"bits", "group_size" (-1 per channel), "desc_act", "sym", "damp_percent",
//  "static_groups", "true_sequential", "quant_method": "gptq",
//  "checkpoint_format": "gptq" (v1 zeros) or "gptq_v2"}. Throws Error for a GSQ
// configuration that the HF layout cannot hold (float minimums).
std::string quantize_config_json(const GsqConfig& gsq, const GptqConfig& gptq, int format_version = 2);

}  // namespace lowbit
