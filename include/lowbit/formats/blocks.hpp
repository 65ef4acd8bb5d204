#pragma once
// GGML block layouts, byte for byte. Plain structs with fixed sizes so they can be
// memcpy'd from a GGUF file and shared with CUDA kernels. fp16 fields are raw
// IEEE half bits (see core/half.hpp). Element i of a row lives in block i / QK.
#include <cstdint>

namespace lowbit {

inline constexpr int QK_LEGACY = 32;  // Q4_0 ... Q8_1, IQ4_NL
inline constexpr int QK_K = 256;      // K-quants and IQ4_XS super-blocks
inline constexpr int K_SCALE_SIZE = 12;

struct block_q4_0 {
  uint16_t d;         // scale
  uint8_t qs[16];     // element j in low nibble of qs[j], element j+16 in high nibble
};
struct block_q4_1 {
  uint16_t d, m;      // scale, minimum
  uint8_t qs[16];
};
struct block_q5_0 {
  uint16_t d;
  uint8_t qh[4];      // 5th bits: bit j of the little-endian u32 is element j's
  uint8_t qs[16];
};
struct block_q5_1 {
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[16];
};
struct block_q8_0 {
  uint16_t d;
  int8_t qs[32];
};
struct block_q8_1 {
  uint16_t d, s;      // scale, d * sum(qs)
  int8_t qs[32];
};
struct block_q2_K {
  uint8_t scales[16]; // low nibble: 4-bit scale, high nibble: 4-bit min, per 16 elements
  uint8_t qs[64];
  uint16_t d, dmin;
};
struct block_q3_K {
  uint8_t hmask[32];  // high bits
  uint8_t qs[64];     // low 2 bits
  uint8_t scales[12]; // sixteen 6-bit signed scales (offset 32)
  uint16_t d;
};
struct block_q4_K {
  uint16_t d, dmin;
  uint8_t scales[K_SCALE_SIZE];  // eight 6-bit scales and eight 6-bit mins
  uint8_t qs[128];
};
struct block_q5_K {
  uint16_t d, dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qh[32];
  uint8_t qs[128];
};
struct block_q6_K {
  uint8_t ql[128];    // low 4 bits
  uint8_t qh[64];     // high 2 bits
  int8_t scales[16];  // 8-bit scales per 16 elements
  uint16_t d;
};
struct block_q8_K {
  float d;
  int8_t qs[256];
  int16_t bsums[16];  // sum of qs per 16 elements
};
struct block_iq4_nl {
  uint16_t d;
  uint8_t qs[16];     // indices into kIq4nlValues, Q4_0's nibble order
};
struct block_iq4_xs {
  uint16_t d;
  uint16_t scales_h;  // high 2 bits of eight 6-bit scales
  uint8_t scales_l[4];// low 4 bits of eight scales
  uint8_t qs[128];
};

static_assert(sizeof(block_q4_0) == 18);
static_assert(sizeof(block_q4_1) == 20);
static_assert(sizeof(block_q5_0) == 22);
static_assert(sizeof(block_q5_1) == 24);
static_assert(sizeof(block_q8_0) == 34);
static_assert(sizeof(block_q8_1) == 36);
static_assert(sizeof(block_q2_K) == 84);
static_assert(sizeof(block_q3_K) == 110);
static_assert(sizeof(block_q4_K) == 144);
static_assert(sizeof(block_q5_K) == 176);
static_assert(sizeof(block_q6_K) == 210);
static_assert(sizeof(block_q8_K) == 292);
static_assert(sizeof(block_iq4_nl) == 18);
static_assert(sizeof(block_iq4_xs) == 136);

// IQ4_NL / IQ4_XS non-linear code book (ggml's kvalues_iq4nl).
inline constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

}  // namespace lowbit
