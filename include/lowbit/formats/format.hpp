#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace lowbit {

// Storage formats. The numeric values are GGML's type ids, so a Format converts
// to and from a GGUF tensor type without a table.
enum class Format : uint32_t {
  F32 = 0, F16 = 1,
  Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ4_NL = 20, IQ4_XS = 23,
  BF16 = 30,
};

struct FormatTraits {
  Format format;
  std::string_view name;  // GGML's spelling: "Q4_K", "F16", ...
  uint32_t ggml_type;
  int block_elems;        // elements per block (1 for plain float types)
  int block_bytes;        // bytes per block
  bool quantized;
  // A format meant for activations (Q8_1, Q8_K): quantized on the fly, not stored in models.
  bool activation_only;

  double bits_per_weight() const { return 8.0 * block_bytes / block_elems; }
};

// Every format, in a stable display order.
std::span<const FormatTraits> all_formats();
const FormatTraits& traits(Format f);
// Looks a format up by name, case-insensitively ("q4_k" works). nullopt when unknown.
std::optional<Format> format_from_name(std::string_view name);
// Throws Error when the id is not one lowbit implements.
Format format_from_ggml_type(uint32_t ggml_type);

// Bytes one row of `cols` elements occupies; throws Error naming the format and
// column count when cols is not a multiple of the block size.
size_t row_bytes(Format f, int64_t cols);

}  // namespace lowbit
