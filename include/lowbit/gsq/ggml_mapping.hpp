#pragma once
// GSQ configurations whose math is a GGML block format's:
//   4-bit g32 symmetric fp16          -> Q4_0   (w = d * (q - 8))
//   4-bit g32 asymmetric_float fp16   -> Q4_1   (w = d * q + m)
//   5-bit g32 symmetric fp16          -> Q5_0
//   5-bit g32 asymmetric_float fp16   -> Q5_1
//   8-bit g32 symmetric fp16          -> Q8_0   (w = d * (q - 128), stored as int8)
// Such results convert to the format's bytes without loss, so they can go into a GGUF.
#include <cstddef>
#include <optional>
#include <vector>

#include "lowbit/formats/format.hpp"
#include "lowbit/gsq/quantizer.hpp"

namespace lowbit {

// The GGML format with the same math as cfg, if any (double quantization never maps).
std::optional<Format> ggml_format_for(const GsqConfig& cfg);

// The inverse: the GSQ configuration (group size 32, fp16 scales) whose math is format
// f's, searching its scales with `search`; nullopt for any format not listed above.
// ggml_format_for(*gsq_config_for(f, s)) == f.
std::optional<GsqConfig> gsq_config_for(Format f, ScaleSearch search = ScaleSearch::mse);

// The result's blocks in that format (rows back to back, as quantize() writes them).
// Throws Error when the configuration has no GGML equivalent.
std::vector<std::byte> to_ggml_blocks(const GsqResult& q);

}  // namespace lowbit
