#pragma once
// The nibble map of the 32-element formats (Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL and the
// IQ4_XS sub-blocks): element j < 16 in the low nibble of qs[j], element j + 16 in
// the high nibble of qs[j]. Host and device code share it.
#include <cstdint>

#include "lowbit/core/host_device.hpp"

namespace lowbit::kernels {

// Packs 32 codes (each 0..15; higher bits are dropped) into 16 bytes.
template <class Code>
LOWBIT_HD void pack_nibbles32(const Code* q, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>((q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4));
}

// Code j (0..31) of 16 packed bytes.
LOWBIT_HD int nibble32(const uint8_t* qs, int j) { return j < 16 ? qs[j] & 0x0f : qs[j - 16] >> 4; }

}  // namespace lowbit::kernels
