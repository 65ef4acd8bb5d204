#pragma once
// The 12-byte packing of eight 6-bit scales and eight 6-bit mins used by Q4_K and
// Q5_K (ggml's get_scale_min_k4). Sub-blocks 0..3 keep their scale in the low six
// bits of bytes 0..3 and their min in the low six bits of bytes 4..7. Sub-blocks
// 4..7 keep the low four bits of scale and min in the two nibbles of bytes 8..11,
// and the high two bits in the top two bits of bytes 0..3 (scale) and 4..7 (min).
// Host and device code share these (kernels/common/ is backend-neutral).
#include <cstdint>
#include <cstring>

#include "lowbit/core/host_device.hpp"

namespace lowbit::kernels {

// Reads sub-block j's 6-bit scale and min.
LOWBIT_HD void get_scale_min_k4(int j, const uint8_t* q, uint8_t& sc, uint8_t& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Sub-block j's decode map: value = scale * q - min with scale = d * sc_j and
// min = dmin * m_j, multiplied in the scalar dequantizers' order.
LOWBIT_HD void sub_block_affine_k4(int j, const uint8_t* q, float d, float dmin, float& scale, float& min) {
  uint8_t sc, m;
  get_scale_min_k4(j, q, sc, m);
  scale = d * sc;
  min = dmin * m;
}

// All eight scales and mins at once, with four 32-bit operations instead of eight
// branchy byte lookups (what the SIMD dot products use per block): sc[j], m[j] as
// get_scale_min_k4 gives them.
LOWBIT_HD void unpack_scales_mins_k4(const uint8_t* packed, uint8_t* sc, uint8_t* m) {
  constexpr uint32_t low6 = 0x3f3f3f3f, low4 = 0x0f0f0f0f, low2 = 0x03030303;
  uint32_t u[3];
  memcpy(u, packed, 12);
  const uint32_t scales[2] = {u[0] & low6, (u[2] & low4) | (((u[0] >> 6) & low2) << 4)};
  const uint32_t mins[2] = {u[1] & low6, ((u[2] >> 4) & low4) | (((u[1] >> 6) & low2) << 4)};
  memcpy(sc, scales, 8);
  memcpy(m, mins, 8);
}

// Q3_K's sixteen 6-bit signed scales (stored + 32) from its 12 scale bytes: the low
// four bits of scale j sit in byte j % 8 (low nibble for j < 8, high nibble after),
// the high two bits in bits 2 * (j / 4) of byte 8 + j % 4. Word operations, as for
// K4 above; sc[j] is the signed scale (-32..31).
LOWBIT_HD void unpack_scales_q3_K(const uint8_t* packed, int8_t* sc) {
  constexpr uint32_t low4 = 0x0f0f0f0f, low2 = 0x03030303;
  uint32_t u[3];
  memcpy(u, packed, 12);
  const uint32_t words[4] = {(u[0] & low4) | ((u[2] & low2) << 4), (u[1] & low4) | (((u[2] >> 2) & low2) << 4),
                             ((u[0] >> 4) & low4) | (((u[2] >> 4) & low2) << 4),
                             ((u[1] >> 4) & low4) | (((u[2] >> 6) & low2) << 4)};
  uint8_t biased[16];
  memcpy(biased, words, 16);
  for (int j = 0; j < 16; ++j) sc[j] = static_cast<int8_t>(biased[j] - 32);
}

// Packs eight scales and mins (each 0..63) into the 12 bytes `q`.
LOWBIT_HD void put_scale_min_k4(const uint8_t* sc, const uint8_t* m, uint8_t* q) {
  for (int i = 0; i < 12; ++i) q[i] = 0;
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      q[j] |= static_cast<uint8_t>(sc[j] & 63);
      q[j + 4] |= static_cast<uint8_t>(m[j] & 63);
    } else {
      q[j + 4] = static_cast<uint8_t>((sc[j] & 0xF) | ((m[j] & 0xF) << 4));
      q[j - 4] |= static_cast<uint8_t>((sc[j] >> 4) << 6);
      q[j] |= static_cast<uint8_t>((m[j] >> 4) << 6);
    }
  }
}

}  // namespace lowbit::kernels
