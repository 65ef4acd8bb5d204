#include "lowbit/gsq/ggml_mapping.hpp"

#include <cstring>
#include <string>

#include "cpu/reference/block_codec.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit {

namespace {

// The one table of GSQ configurations with a GGML format's math (group size 32, fp16
// scales, no double quantization): bits and scheme per format.
struct Equivalent {
  Format format;
  int bits;
  GsqScheme scheme;
};
constexpr Equivalent kEquivalents[] = {
    {Format::Q4_0, 4, GsqScheme::symmetric}, {Format::Q4_1, 4, GsqScheme::asymmetric_float},
    {Format::Q5_0, 5, GsqScheme::symmetric}, {Format::Q5_1, 5, GsqScheme::asymmetric_float},
    {Format::Q8_0, 8, GsqScheme::symmetric},
};

}  // namespace

std::optional<Format> ggml_format_for(const GsqConfig& c) {
  if (c.group_size != QK_LEGACY || c.scale_storage != ScaleStorage::fp16 || c.double_quant) return std::nullopt;
  for (const Equivalent& e : kEquivalents)
    if (c.bits == e.bits && c.scheme == e.scheme) return e.format;
  return std::nullopt;
}

std::optional<GsqConfig> gsq_config_for(Format f, ScaleSearch search) {
  for (const Equivalent& e : kEquivalents) {
    if (e.format != f) continue;
    GsqConfig c;
    c.bits = e.bits;
    c.scheme = e.scheme;
    c.group_size = QK_LEGACY;
    c.scale_storage = ScaleStorage::fp16;
    c.search = search;
    return c;
  }
  return std::nullopt;
}

std::vector<std::byte> to_ggml_blocks(const GsqResult& q) {
  const auto f = ggml_format_for(q.config);
  if (!f) throw Error("GSQ " + q.config.describe() + " has no GGML block format with the same math");
  // The block codec knows each format's bit layout; GSQ supplies the levels (its
  // code minus the zero point: 2^(b-1) when symmetric, 0 with a float minimum).
  const kernels::BlockCodec& codec = *kernels::block_codec(*f);
  const bool has_min = q.config.scheme == GsqScheme::asymmetric_float;
  const int zero = has_min ? 0 : 1 << (q.config.bits - 1);
  const int64_t groups = q.groups();
  const size_t bb = static_cast<size_t>(codec.block_bytes);
  std::vector<std::byte> out(static_cast<size_t>(q.rows * groups) * bb);
  for (int64_t r = 0; r < q.rows; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      std::byte* block = out.data() + static_cast<size_t>(r * groups + g) * bb;
      const GroupParams p = q.params(r, g);
      // Every 32-element format starts with the fp16 scale d; Q4_1 / Q5_1 follow it
      // with the fp16 minimum m. Both are exact: GSQ stored them as fp16 values.
      const uint16_t d = fp32_to_fp16(p.scale), m = fp32_to_fp16(p.min);
      std::memcpy(block, &d, 2);
      if (has_min) std::memcpy(block + 2, &m, 2);
      for (int j = 0; j < QK_LEGACY; ++j)
        codec.set_level(block, j, static_cast<int>(q.code(r, g * QK_LEGACY + j)) - zero);
      if (codec.finish != nullptr) codec.finish(block);
    }
  }
  return out;
}

}  // namespace lowbit
