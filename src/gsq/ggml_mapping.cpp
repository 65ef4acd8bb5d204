#include "lowbit/gsq/ggml_mapping.hpp"

#include <cstring>
#include <string>

#include "lowbit/core/error.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit {

std::optional<Format> ggml_format_for(const GsqConfig& c) {
  if (c.group_size != QK_LEGACY || c.scale_storage != ScaleStorage::fp16 || c.double_quant) return std::nullopt;
  const bool sym = c.scheme == GsqScheme::symmetric, fmin = c.scheme == GsqScheme::asymmetric_float;
  if (c.bits == 4 && sym) return Format::Q4_0;
  if (c.bits == 4 && fmin) return Format::Q4_1;
  if (c.bits == 5 && sym) return Format::Q5_0;
  if (c.bits == 5 && fmin) return Format::Q5_1;
  if (c.bits == 8 && sym) return Format::Q8_0;
  return std::nullopt;
}

std::vector<std::byte> to_ggml_blocks(const GsqResult& q) {
  const auto f = ggml_format_for(q.config);
  if (!f) throw Error("GSQ " + q.config.describe() + " has no GGML block format with the same math");
  const int64_t groups = q.groups();
  const size_t bb = static_cast<size_t>(traits(*f).block_bytes);
  std::vector<std::byte> out(static_cast<size_t>(q.rows * groups) * bb);
  for (int64_t r = 0; r < q.rows; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      std::byte* dst = out.data() + static_cast<size_t>(r * groups + g) * bb;
      const GroupParams p = q.params(r, g);
      const uint16_t d = fp32_to_fp16(p.scale), m = fp32_to_fp16(p.min);  // exact: already fp16 values
      auto code = [&](int j) { return q.code(r, g * QK_LEGACY + j); };
      switch (*f) {
        case Format::Q8_0: {
          block_q8_0 b{};
          b.d = d;
          for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<int8_t>(static_cast<int>(code(j)) - 128);
          std::memcpy(dst, &b, sizeof b);
          break;
        }
        case Format::Q4_0:
        case Format::Q4_1: {
          uint8_t qs[16];
          for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>(code(j) | (code(j + 16) << 4));
          if (*f == Format::Q4_0) {
            block_q4_0 b{d, {}};
            std::memcpy(b.qs, qs, 16);
            std::memcpy(dst, &b, sizeof b);
          } else {
            block_q4_1 b{d, m, {}};
            std::memcpy(b.qs, qs, 16);
            std::memcpy(dst, &b, sizeof b);
          }
          break;
        }
        case Format::Q5_0:
        case Format::Q5_1: {
          uint8_t qs[16];
          uint32_t qh = 0;
          for (int j = 0; j < 16; ++j) {
            qs[j] = static_cast<uint8_t>((code(j) & 15) | ((code(j + 16) & 15) << 4));
            qh |= ((code(j) >> 4) & 1u) << j;
            qh |= ((code(j + 16) >> 4) & 1u) << (j + 16);
          }
          if (*f == Format::Q5_0) {
            block_q5_0 b{d, {}, {}};
            std::memcpy(b.qh, &qh, 4);  // little-endian u32, as ggml reads it
            std::memcpy(b.qs, qs, 16);
            std::memcpy(dst, &b, sizeof b);
          } else {
            block_q5_1 b{d, m, {}, {}};
            std::memcpy(b.qh, &qh, 4);
            std::memcpy(b.qs, qs, 16);
            std::memcpy(dst, &b, sizeof b);
          }
          break;
        }
        default:
          throw Error("GSQ to GGML: unexpected format " + std::string(traits(*f).name));
      }
    }
  }
  return out;
}

}  // namespace lowbit
