#include "lowbit/formats/format.hpp"
#include "lowbit/formats/effort.hpp"

#include <array>
#include <cctype>
#include <string>

#include "lowbit/core/error.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit {
namespace {

constexpr std::array kFormats = {
    //           format          name      id  elems  bytes  quantized activation_only
    FormatTraits{Format::F32,    "F32",     0,  1,     4,     false, false},
    FormatTraits{Format::F16,    "F16",     1,  1,     2,     false, false},
    FormatTraits{Format::BF16,   "BF16",   30,  1,     2,     false, false},
    FormatTraits{Format::Q8_0,   "Q8_0",    8, 32, sizeof(block_q8_0), true, false},
    FormatTraits{Format::Q8_1,   "Q8_1",    9, 32, sizeof(block_q8_1), true, true},
    FormatTraits{Format::Q5_1,   "Q5_1",    7, 32, sizeof(block_q5_1), true, false},
    FormatTraits{Format::Q5_0,   "Q5_0",    6, 32, sizeof(block_q5_0), true, false},
    FormatTraits{Format::Q4_1,   "Q4_1",    3, 32, sizeof(block_q4_1), true, false},
    FormatTraits{Format::Q4_0,   "Q4_0",    2, 32, sizeof(block_q4_0), true, false},
    FormatTraits{Format::IQ4_NL, "IQ4_NL", 20, 32, sizeof(block_iq4_nl), true, false},
    FormatTraits{Format::Q8_K,   "Q8_K",   15, 256, sizeof(block_q8_K), true, true},
    FormatTraits{Format::Q6_K,   "Q6_K",   14, 256, sizeof(block_q6_K), true, false},
    FormatTraits{Format::Q5_K,   "Q5_K",   13, 256, sizeof(block_q5_K), true, false},
    FormatTraits{Format::Q4_K,   "Q4_K",   12, 256, sizeof(block_q4_K), true, false},
    FormatTraits{Format::IQ4_XS, "IQ4_XS", 23, 256, sizeof(block_iq4_xs), true, false},
    FormatTraits{Format::Q3_K,   "Q3_K",   11, 256, sizeof(block_q3_K), true, false},
    FormatTraits{Format::Q2_K,   "Q2_K",   10, 256, sizeof(block_q2_K), true, false},
};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(a[i])) != std::toupper(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

}  // namespace

std::span<const FormatTraits> all_formats() { return kFormats; }

const FormatTraits& traits(Format f) {
  for (const auto& t : kFormats)
    if (t.format == f) return t;
  throw Error("unknown lowbit format id " + std::to_string(static_cast<uint32_t>(f)));
}

std::optional<Format> format_from_name(std::string_view name) {
  for (const auto& t : kFormats)
    if (iequals(t.name, name)) return t.format;
  return std::nullopt;
}

Format format_from_ggml_type(uint32_t ggml_type) {
  for (const auto& t : kFormats)
    if (t.ggml_type == ggml_type) return t.format;
  throw Error("GGML type id " + std::to_string(ggml_type) + " is not supported by lowbit");
}

size_t row_bytes(Format f, int64_t cols) {
  const FormatTraits& t = traits(f);
  if (cols < 0 || cols % t.block_elems != 0)
    throw Error(std::string(t.name) + ": row length " + std::to_string(cols) +
                " is not a multiple of the block size " + std::to_string(t.block_elems));
  return static_cast<size_t>(cols / t.block_elems) * static_cast<size_t>(t.block_bytes);
}

}  // namespace lowbit

namespace lowbit {

std::string_view to_string(QuantizeEffort e) {
  switch (e) {
    case QuantizeEffort::fast: return "fast";
    case QuantizeEffort::standard: return "default";
    case QuantizeEffort::best: return "best";
  }
  return "?";
}

QuantizeEffort quantize_effort_from_name(std::string_view name) {
  for (QuantizeEffort e : {QuantizeEffort::fast, QuantizeEffort::standard, QuantizeEffort::best})
    if (name == to_string(e)) return e;
  throw Error("unknown quantization effort \"" + std::string(name) + "\" (expected fast, default or best)");
}

}  // namespace lowbit
