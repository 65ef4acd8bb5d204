#pragma once
// Element-level view of every GGML block format, as LOWBIT_HD functions so the CUDA
// kernels and the host share one copy of the bit layouts:
//
//   value(e) = scale(sub) * level(e) [+ offset(sub)]
//
// with (scale, offset) multiplied out in the scalar dequantizers' float order, so a
// decoder built on it is bit-identical to kernels/cpu/reference/ when compiled without
// FMA contraction (-ffp-contract=off on the host, --fmad=false for nvcc).
// tests/kernels/test_cuda_common.cpp checks every format against lowbit::dequantize on
// the CPU; the CUDA decoders, GEMV and GEMM kernels only call these functions.
//
// level() is the signed value the dequantizer multiplies (for IQ4_NL / IQ4_XS the
// code-book entry), always within int8, so dp4a can consume it.
#include <cstdint>
#include <cstring>

#include "common/kquant_scales.hpp"
#include "common/nibbles.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/core/host_device.hpp"
#include "lowbit/formats/blocks.hpp"
#include "lowbit/formats/format.hpp"

// LOWBIT_HD for static member functions, which cannot be `static inline` twice. Class
// members keep external linkage on the host, so this header stays out of the ISA
// folders (kernels/cpu/x86/...): the CUDA kernels and the tests include it.
#if defined(__CUDACC__)
#define LOWBIT_HD_MEMBER __host__ __device__ __forceinline__
#else
#define LOWBIT_HD_MEMBER inline
#endif

namespace lowbit::kernels {

struct Affine {
  float scale;
  float offset;  // 0 for formats without a min
};

// The IQ4 code book, reachable from device code (a host constexpr array is not).
LOWBIT_HD int iq4_value(int i) {
  constexpr int8_t v[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  return v[i];
}

// Q2_K / Q3_K low two bits of element e.
LOWBIT_HD int low2_k(const uint8_t* qs, int e) { return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3; }
// Q4_K / Q5_K low four bits of element e: sub-blocks 2k and 2k+1 share qs[32k .. 32k+31].
LOWBIT_HD int nibble_k(const uint8_t* qs, int e) {
  const uint8_t b = qs[32 * (e / 64) + e % 32];
  return (e / 32) % 2 == 0 ? b & 0x0f : b >> 4;
}

template <Format F>
struct BlockLevels;

template <>
struct BlockLevels<Format::Q4_0> {
  using Block = block_q4_0;
  static constexpr int elems = 32, sub = 32;
  static constexpr bool has_offset = false;
  LOWBIT_HD_MEMBER static int level(const Block& b, int e) { return nibble32(b.qs, e) - 8; }
  LOWBIT_HD_MEMBER static Affine map(const Block& b, int) { return {fp16_to_fp32(b.d), 0.0f}; }
};
template <>
struct BlockLevels<Format::Q4_1> {
  using Block = block_q4_1;
  static constexpr int elems = 32, sub = 32;
  static constexpr bool has_offset = true;
  LOWBIT_HD_MEMBER static int level(const Block& b, int e) { return nibble32(b.qs, e); }
  LOWBIT_HD_MEMBER static Affine map(const Block& b, int) { return {fp16_to_fp32(b.d), fp16_to_fp32(b.m)}; }
};
template <>
struct BlockLevels<Format::Q5_0> {
  using Block = block_q5_0;
  static constexpr int elems = 32, sub = 32;
  static constexpr bool has_offset = false;
  LOWBIT_HD_MEMBER static int level(const Block& b, int e) {
    return (nibble32(b.qs, e) | ((b.qh[e / 8] >> (e % 8)) & 1) << 4) - 16;
  }
  LOWBIT_HD_MEMBER static Affine map(const Block& b, int) { return {fp16_to_fp32(b.d), 0.0f}; }
};
template <>
struct BlockLevels<Format::Q5_1> {
  using Block = block_q5_1;
  static constexpr int elems = 32, sub = 32;
  static constexpr bool has_offset = true;
  LOWBIT_HD_MEMBER static int level(const Block& b, int e) { return nibble32(b.qs, e) | ((b.qh[e / 8] >> (e % 8)) & 1) << 4; }
  LOWBIT_HD_MEMBER static Affine map(const Block& b, int) { return {fp16_to_fp32(b.d), fp16_to_fp32(b.m)}; }
};
template <>
struct BlockLevels<Format::Q8_0> {
  using Block = block_q8_0;
  static constexpr int elems = 32, sub = 32;
  static constexpr bool has_offset = false;
  LOWBIT_HD_MEMBER static int level(const Block& b, int e) { return b.qs[e]; }
  LOWBIT_HD_MEMBER static Affine map(const Block& b, int) { return {fp16_to_fp32(b.d), 0.0f}; }
};
template <>
struct BlockLevels<Format::Q8_1> {
  using Block = block_q8_1;
  static constexpr int elems = 32, sub = 32;
  static constexpr bool has_offset = false;
  LOWBIT_HD_MEMBER static int level(const Block& b, int e) { return b.qs[e]; }
  LOWBIT_HD_MEMBER static Affine map(const Block& b, int) { return {fp16_to_fp32(b.d), 0.0f}; }
};
template <>
struct BlockLevels<Format::Q2_K> {
  using Block = block_q2_K;
  static constexpr int elems = 256, sub = 16;
  static constexpr bool has_offset = true;
  LOWBIT_HD_MEMBER static int level(const Block& b, int e) { return low2_k(b.qs, e); }
  LOWBIT_HD_MEMBER static Affine map(const Block& b, int j) {
    const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
    return {d * static_cast<float>(b.scales[j] & 0xF), -(dmin * static_cast<float>(b.scales[j] >> 4))};
  }
};
template <>
struct BlockLevels<Format::Q3_K> {
  using Block = block_q3_K;
  static constexpr int elems = 256, sub = 16;
  static constexpr bool has_offset = false;
  LOWBIT_HD_MEMBER static int level(const Block& b, int e) { return (low2_k(b.qs, e) | ((b.hmask[e % 32] >> (e / 32)) & 1) << 2) - 4; }
  LOWBIT_HD_MEMBER static Affine map(const Block& b, int j) {
    const int lo = (b.scales[j % 8] >> (j < 8 ? 0 : 4)) & 0xF;
    const int hi = (b.scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    return {fp16_to_fp32(b.d) * static_cast<float>((lo | hi << 4) - 32), 0.0f};
  }
};
template <>
struct BlockLevels<Format::Q4_K> {
  using Block = block_q4_K;
  static constexpr int elems = 256, sub = 32;
  static constexpr bool has_offset = true;
  LOWBIT_HD_MEMBER static int level(const Block& b, int e) { return nibble_k(b.qs, e); }
  LOWBIT_HD_MEMBER static Affine map(const Block& b, int j) {
    float s, m;
    sub_block_affine_k4(j, b.scales, fp16_to_fp32(b.d), fp16_to_fp32(b.dmin), s, m);
    return {s, -m};
  }
};
template <>
struct BlockLevels<Format::Q5_K> {
  using Block = block_q5_K;
  static constexpr int elems = 256, sub = 32;
  static constexpr bool has_offset = true;
  LOWBIT_HD_MEMBER static int level(const Block& b, int e) { return nibble_k(b.qs, e) | ((b.qh[e % 32] >> (e / 32)) & 1) << 4; }
  LOWBIT_HD_MEMBER static Affine map(const Block& b, int j) {
    float s, m;
    sub_block_affine_k4(j, b.scales, fp16_to_fp32(b.d), fp16_to_fp32(b.dmin), s, m);
    return {s, -m};
  }
};
template <>
struct BlockLevels<Format::Q6_K> {
  using Block = block_q6_K;
  static constexpr int elems = 256, sub = 16;
  static constexpr bool has_offset = false;
  // Element e = 128h + 32k + l: low four bits in ql[64h + l + 32(k%2)] (low nibble for
  // k < 2), high two bits at bit 2k of qh[32h + l].
  LOWBIT_HD_MEMBER static int level(const Block& b, int e) {
    const int h = e / 128, k = (e % 128) / 32, l = e % 32;
    const uint8_t lb = b.ql[64 * h + l + 32 * (k % 2)];
    const int low = k < 2 ? lb & 0x0f : lb >> 4;
    return (low | ((b.qh[32 * h + l] >> (2 * k)) & 3) << 4) - 32;
  }
  LOWBIT_HD_MEMBER static Affine map(const Block& b, int j) { return {fp16_to_fp32(b.d) * static_cast<float>(b.scales[j]), 0.0f}; }
};
template <>
struct BlockLevels<Format::Q8_K> {
  using Block = block_q8_K;
  static constexpr int elems = 256, sub = 256;
  static constexpr bool has_offset = false;
  LOWBIT_HD_MEMBER static int level(const Block& b, int e) { return b.qs[e]; }
  LOWBIT_HD_MEMBER static Affine map(const Block& b, int) { return {b.d, 0.0f}; }
};
template <>
struct BlockLevels<Format::IQ4_NL> {
  using Block = block_iq4_nl;
  static constexpr int elems = 32, sub = 32;
  static constexpr bool has_offset = false;
  LOWBIT_HD_MEMBER static int level(const Block& b, int e) { return iq4_value(nibble32(b.qs, e)); }
  LOWBIT_HD_MEMBER static Affine map(const Block& b, int) { return {fp16_to_fp32(b.d), 0.0f}; }
};
template <>
struct BlockLevels<Format::IQ4_XS> {
  using Block = block_iq4_xs;
  static constexpr int elems = 256, sub = 32;
  static constexpr bool has_offset = false;
  LOWBIT_HD_MEMBER static int level(const Block& b, int e) { return iq4_value(nibble32(b.qs + 16 * (e / 32), e % 32)); }
  LOWBIT_HD_MEMBER static Affine map(const Block& b, int j) {
    const int ls = ((b.scales_l[j / 2] >> (4 * (j % 2))) & 0x0f) | (((b.scales_h >> (2 * j)) & 3) << 4);
    return {fp16_to_fp32(b.d) * static_cast<float>(ls - 32), 0.0f};
  }
};

// Element i of a row of blocks, exactly as the scalar dequantizer writes it.
template <Format F>
LOWBIT_HD float decode_element(const typename BlockLevels<F>::Block* row, int64_t i) {
  using L = BlockLevels<F>;
  const auto& b = row[i / L::elems];
  const int e = static_cast<int>(i % L::elems);
  const Affine a = L::map(b, e / L::sub);
  const auto l = static_cast<float>(L::level(b, e));
  if constexpr (L::has_offset) return a.scale * l + a.offset;
  return a.scale * l;
}

// ---------------------------------------------------------------- int8 dot products

// Four signed bytes of a and b multiplied and added to c: __dp4a on the device, the
// same integer arithmetic on the host.
LOWBIT_HD int dp4a(int a, int b, int c) {
#if defined(__CUDA_ARCH__)
  return __dp4a(a, b, c);
#else
  for (int k = 0; k < 4; ++k)
    c += static_cast<int>(static_cast<int8_t>(static_cast<uint32_t>(a) >> (8 * k))) *
         static_cast<int>(static_cast<int8_t>(static_cast<uint32_t>(b) >> (8 * k)));
  return c;
#endif
}

LOWBIT_HD int pack_int8x4(int a, int b, int c, int d) {
  return static_cast<int>((static_cast<uint32_t>(a) & 0xffu) | (static_cast<uint32_t>(b) & 0xffu) << 8 |
                          (static_cast<uint32_t>(c) & 0xffu) << 16 | (static_cast<uint32_t>(d) & 0xffu) << 24);
}

// Four unaligned-safe bytes as a little-endian int (block fields are only 2-byte aligned).
LOWBIT_HD int load_int8x4(const void* p) {
  int v;
  std::memcpy(&v, p, 4);
  return v;
}

// The same at an address known to be 2-byte (block fields after an fp16) or 4-byte
// aligned: two 16-bit or one 32-bit load on the device instead of four byte loads.
LOWBIT_HD int load_int8x4_a2(const void* p) {
#if defined(__CUDA_ARCH__)
  const auto* h = static_cast<const uint16_t*>(p);
  return static_cast<int>(static_cast<uint32_t>(h[0]) | static_cast<uint32_t>(h[1]) << 16);
#else
  return load_int8x4(p);
#endif
}
LOWBIT_HD int load_int8x4_a4(const void* p) {
#if defined(__CUDA_ARCH__)
  return *static_cast<const int*>(p);
#else
  return load_int8x4(p);
#endif
}

// Levels e .. e+3 of a block (e a multiple of 4) packed as int8x4. Generic through
// level(); the formats the GEMV targets name (Q4_0, Q8_0, Q4_K) read whole words.
template <Format F>
LOWBIT_HD int levels4(const typename BlockLevels<F>::Block& b, int e) {
  using L = BlockLevels<F>;
  if constexpr (F == Format::Q8_0 || F == Format::Q8_1) {
    return load_int8x4_a2(b.qs + e);
  } else if constexpr (F == Format::Q4_0) {
    // Nibbles 0..15 biased by -8 per byte without borrows: (q + 0x78) ^ 0x80.
    const uint32_t w = static_cast<uint32_t>(load_int8x4_a2(b.qs + (e & 15)));
    const uint32_t q = (e < 16 ? w : w >> 4) & 0x0f0f0f0fu;
    return static_cast<int>((q + 0x78787878u) ^ 0x80808080u);
  } else if constexpr (F == Format::Q4_K) {
    const uint32_t w = static_cast<uint32_t>(load_int8x4_a2(b.qs + 32 * (e / 64) + e % 32));
    return static_cast<int>(((e / 32) % 2 == 0 ? w : w >> 4) & 0x0f0f0f0fu);
  } else {
    return pack_int8x4(L::level(b, e), L::level(b, e + 1), L::level(b, e + 2), L::level(b, e + 3));
  }
}

// One 32-element chunk of a weight row, unpacked once for every activation row of a
// batch: its levels as eight int8x4 words and the map of each of its parts (two
// 16-element sub-blocks for Q2_K, Q3_K and Q6_K, one otherwise).
template <Format F>
struct WeightChunk {
  static constexpr int part = BlockLevels<F>::sub < 32 ? BlockLevels<F>::sub : 32;
  static constexpr int parts = 32 / part;
  int words[8];
  Affine maps[parts];
};

template <Format F>
LOWBIT_HD WeightChunk<F> load_chunk(const typename BlockLevels<F>::Block* row, int64_t c) {
  using L = BlockLevels<F>;
  using C = WeightChunk<F>;
  constexpr int chunks_per_block = L::elems / 32;
  const auto& b = row[c / chunks_per_block];
  const int e0 = static_cast<int>(c % chunks_per_block) * 32;
  C w;
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int k = 0; k < 8; ++k) w.words[k] = levels4<F>(b, e0 + 4 * k);
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int h = 0; h < C::parts; ++h) w.maps[h] = L::map(b, (e0 + h * C::part) / L::sub);
  return w;
}

// sum_{e in chunk} w_e * x_e against the chunk's Q8_1 activation block (4-byte
// aligned, as the GEMV's can_implement requires): integer dot products per part, then
// one float map per part. The activation sum is taken from the codes (not Q8_1's fp16
// s), so the offset term carries no fp16 rounding.
template <Format F>
LOWBIT_HD float chunk_dot(const WeightChunk<F>& w, const block_q8_1& x) {
  using C = WeightChunk<F>;
  const float dx = fp16_to_fp32(x.d);
  float acc = 0.0f;
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int h = 0; h < C::parts; ++h) {
    int isum = 0, qsum = 0;
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
    for (int k = 0; k < C::part / 4; ++k) {
      const int xw = load_int8x4_a4(x.qs + h * C::part + 4 * k);
      isum = dp4a(w.words[h * (C::part / 4) + k], xw, isum);
      if constexpr (BlockLevels<F>::has_offset) qsum = dp4a(0x01010101, xw, qsum);
    }
    acc += w.maps[h].scale * (dx * static_cast<float>(isum));
    if constexpr (BlockLevels<F>::has_offset) acc += w.maps[h].offset * (dx * static_cast<float>(qsum));
  }
  return acc;
}

// Both steps for one chunk of row `row`.
template <Format F>
LOWBIT_HD float chunk_dot_q8_1(const typename BlockLevels<F>::Block* row, int64_t c, const block_q8_1& x) {
  return chunk_dot<F>(load_chunk<F>(row, c), x);
}

}  // namespace lowbit::kernels
