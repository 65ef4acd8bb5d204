#pragma once
// Reading b-bit codes packed least significant bits first into 32-bit words, as one
// continuous bit stream (code i at bits [i*b, i*b + b)): the GSQ / AutoGPTQ layout,
// including the 3-, 5- and 6-bit codes that straddle word boundaries.
#include <cstdint>

#include "lowbit/core/host_device.hpp"

namespace lowbit::kernels {

// Code i of the stream.
LOWBIT_HD uint32_t packed_code(const uint32_t* words, int bits, int64_t i) {
  const int64_t bit = i * bits;
  const int64_t w = bit >> 5;
  const int shift = static_cast<int>(bit & 31);
  uint64_t v = words[w] >> shift;
  if (shift + bits > 32) v |= static_cast<uint64_t>(words[w + 1]) << (32 - shift);
  return static_cast<uint32_t>(v) & ((1u << bits) - 1u);
}

}  // namespace lowbit::kernels
