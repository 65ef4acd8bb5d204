#pragma once
// Where Q4_K and Q5_K keep a super-block's 256 codes (ggml's layout): each 64
// elements share 32 bytes of qs, the first 32 in the low nibbles, the next 32 in the
// high ones; Q5_K's fifth bit of element 64k + l is bit 2k of qh[l], that of element
// 64k + 32 + l bit 2k + 1. Every quantizer of the two formats (the references of each
// effort and their SIMD variants) stores its codes through these.
#include <cstdint>

#include "lowbit/core/host_device.hpp"

namespace lowbit::kernels {

// L: 256 codes in 0..15.
LOWBIT_HD void pack_q4_K_codes(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < 256; j += 64)
    for (int l = 0; l < 32; ++l) qs[j / 2 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
}

// L: 256 codes in 0..31; qh is written whole.
LOWBIT_HD void pack_q5_K_codes(const uint8_t* L, uint8_t* qs, uint8_t* qh) {
  for (int l = 0; l < 32; ++l) qh[l] = 0;
  for (int j = 0; j < 256; j += 64) {
    const int bit = j / 32;
    for (int l = 0; l < 32; ++l) {
      const uint8_t lo = L[j + l], hi = L[j + l + 32];
      qs[j / 2 + l] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
      qh[l] = static_cast<uint8_t>(qh[l] | ((lo >> 4) << bit) | ((hi >> 4) << (bit + 1)));
    }
  }
}

}  // namespace lowbit::kernels
