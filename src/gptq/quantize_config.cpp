#include "lowbit/gptq/quantize_config.hpp"

#include <nlohmann/json.hpp>

#include "lowbit/core/error.hpp"

namespace lowbit {

std::string quantize_config_json(const GsqConfig& gsq, const GptqConfig& gptq, int format_version) {
  gsq.validate();
  if (gsq.scheme == GsqScheme::asymmetric_float)
    throw Error("quantize_config.json: " + gsq.describe() + " uses float minimums, which GPTQ checkpoints cannot store");
  if (format_version != 1 && format_version != 2)
    throw Error("quantize_config.json: format version " + std::to_string(format_version) + " (expected 1 or 2)");
  nlohmann::ordered_json j;
  j["bits"] = gsq.bits;
  j["group_size"] = gsq.group_size == 0 ? -1 : gsq.group_size;
  j["desc_act"] = gptq.act_order;
  j["sym"] = gsq.scheme == GsqScheme::symmetric;
  j["damp_percent"] = gptq.damp_percent;
  j["static_groups"] = gptq.static_groups;
  j["true_sequential"] = true;
  j["quant_method"] = "gptq";
  j["checkpoint_format"] = format_version == 1 ? "gptq" : "gptq_v2";
  return j.dump(2) + "\n";
}

}  // namespace lowbit
