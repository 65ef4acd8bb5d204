#include "lowbit/gsq/packing.hpp"

#include <algorithm>
#include <string>

#include "lowbit/core/error.hpp"

namespace lowbit {

void pack_codes(std::span<const uint32_t> codes, int bits, std::span<uint32_t> out) {
  const auto n = static_cast<int64_t>(codes.size());
  if (static_cast<int64_t>(out.size()) < packed_words(n, bits))
    throw Error("pack_codes: " + std::to_string(n) + " " + std::to_string(bits) + "-bit codes need " +
                std::to_string(packed_words(n, bits)) + " words, got " + std::to_string(out.size()));
  std::fill(out.begin(), out.end(), 0u);
  const uint32_t mask = bits == 32 ? ~0u : (1u << bits) - 1u;
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t bit = static_cast<uint64_t>(i) * bits;
    const uint64_t word = bit / 32, shift = bit % 32;
    const uint64_t v = static_cast<uint64_t>(codes[i] & mask) << shift;
    out[word] |= static_cast<uint32_t>(v);
    if (shift + bits > 32) out[word + 1] |= static_cast<uint32_t>(v >> 32);
  }
}

uint32_t unpack_code(const uint32_t* words, int bits, int64_t i) {
  const uint64_t bit = static_cast<uint64_t>(i) * bits;
  const uint64_t word = bit / 32, shift = bit % 32;
  uint64_t v = words[word] >> shift;
  if (shift + bits > 32) v |= static_cast<uint64_t>(words[word + 1]) << (32 - shift);
  return static_cast<uint32_t>(v & ((1u << bits) - 1u));
}

}  // namespace lowbit
