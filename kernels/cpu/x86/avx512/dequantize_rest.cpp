// AVX-512 decoders for every format but Q4_K (dequantize_kquants.cpp) and F32 /
// Q8_1 (plain copies and an activation format, left to AVX2 and scalar). Like the
// AVX2 ones they perform the scalar references' float operations in the same order
// (no FMA), so they are bit-identical to them; codes go from bytes to floats in
// registers, sixteen at a time, with no round trip through memory.
#include "cpu/x86/avx512/target.hpp"  // first: checks this file's compile flags

#include <immintrin.h>


#include "cpu/x86/avx2/codes.hpp"  // 256-bit code extraction (internal linkage, compiled here with these flags)
#include "common/kquant_scales.hpp"
#include "lists/declarations.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Sixteen signed / unsigned codes (one per byte) -> floats.
inline __m512 i8x16_ps(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v)); }
inline __m512 u8x16_ps(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(v)); }

// 32 signed codes times d (the scalar order: code * d or d * code, the same product).
inline void store_scaled32(__m256i codes, __m512 d, float* y) {
  _mm512_storeu_ps(y, _mm512_mul_ps(d, i8x16_ps(_mm256_castsi256_si128(codes))));
  _mm512_storeu_ps(y + 16, _mm512_mul_ps(d, i8x16_ps(_mm256_extracti128_si256(codes, 1))));
}

// 32 unsigned codes: code * d + m.
inline void store_affine32(__m256i codes, __m512 d, __m512 m, float* y) {
  _mm512_storeu_ps(y, _mm512_add_ps(_mm512_mul_ps(u8x16_ps(_mm256_castsi256_si128(codes)), d), m));
  _mm512_storeu_ps(y + 16, _mm512_add_ps(_mm512_mul_ps(u8x16_ps(_mm256_extracti128_si256(codes, 1)), d), m));
}

}  // namespace

void dequantize_row_f16__avx512(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const uint16_t*>(x);
  const __m256i exp_mask = _mm256_set1_epi16(0x7c00), abs_mask = _mm256_set1_epi16(0x7fff);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i h = load256(in + i);
    // Signalling NaNs keep their bits in the scalar conversion; the hardware quiets them.
    if (_mm256_movemask_epi8(_mm256_cmpgt_epi16(_mm256_and_si256(h, abs_mask), exp_mask)) != 0) {
      for (int j = 0; j < 16; ++j) y[i + j] = fp16_to_fp32(in[i + j]);
      continue;
    }
    _mm512_storeu_ps(y + i, _mm512_cvtph_ps(h));
  }
  for (; i < n; ++i) y[i] = fp16_to_fp32(in[i]);
}

void dequantize_row_bf16__avx512(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const uint16_t*>(x);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_si512(y + i, _mm512_slli_epi32(_mm512_cvtepu16_epi32(load256(in + i)), 16));
  for (; i < n; ++i) y[i] = bf16_to_fp32(in[i]);
}

void dequantize_row_q4_0__avx512(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q4_0*>(x);
  for (int64_t i = 0; i < n / QK_LEGACY; ++i, y += QK_LEGACY)
    store_scaled32(_mm256_sub_epi8(nibbles32(in[i].qs), _mm256_set1_epi8(8)), _mm512_set1_ps(fp16_to_fp32(in[i].d)), y);
}

void dequantize_row_q4_1__avx512(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q4_1*>(x);
  for (int64_t i = 0; i < n / QK_LEGACY; ++i, y += QK_LEGACY)
    store_affine32(nibbles32(in[i].qs), _mm512_set1_ps(fp16_to_fp32(in[i].d)), _mm512_set1_ps(fp16_to_fp32(in[i].m)), y);
}

void dequantize_row_q5_0__avx512(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q5_0*>(x);
  for (int64_t i = 0; i < n / QK_LEGACY; ++i, y += QK_LEGACY)
    store_scaled32(_mm256_sub_epi8(five_bit_codes(in[i].qs, in[i].qh), _mm256_set1_epi8(16)),
                   _mm512_set1_ps(fp16_to_fp32(in[i].d)), y);
}

void dequantize_row_q5_1__avx512(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q5_1*>(x);
  for (int64_t i = 0; i < n / QK_LEGACY; ++i, y += QK_LEGACY)
    store_affine32(five_bit_codes(in[i].qs, in[i].qh), _mm512_set1_ps(fp16_to_fp32(in[i].d)),
                   _mm512_set1_ps(fp16_to_fp32(in[i].m)), y);
}

namespace {

// Q8_0 and Q8_1: d * q (Q8_1's s, d * sum(q), is for dot products only).
template <class Block>
void dequantize_q8(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const Block*>(x);
  for (int64_t i = 0; i < n / QK_LEGACY; ++i, y += QK_LEGACY)
    store_scaled32(load256(in[i].qs), _mm512_set1_ps(fp16_to_fp32(in[i].d)), y);
}

}  // namespace

void dequantize_row_q8_0__avx512(const void* x, float* y, int64_t n) { dequantize_q8<block_q8_0>(x, y, n); }
void dequantize_row_q8_1__avx512(const void* x, float* y, int64_t n) { dequantize_q8<block_q8_1>(x, y, n); }

void dequantize_row_iq4_nl__avx512(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_iq4_nl*>(x);
  const __m256i book = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
  for (int64_t i = 0; i < n / QK_LEGACY; ++i, y += QK_LEGACY)
    store_scaled32(_mm256_shuffle_epi8(book, nibbles32(in[i].qs)), _mm512_set1_ps(fp16_to_fp32(in[i].d)), y);
}

void dequantize_row_q2_K__avx512(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q2_K*>(x);
  const __m256i three = _mm256_set1_epi8(3);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const block_q2_K& b = in[i];
    const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
    for (int h = 0; h < 2; ++h) {
      const __m256i bits = load256(b.qs + 32 * h);
      for (int k = 0; k < 4; ++k, y += 32) {
        // Elements 128h + 32k + l: bits 2k of qs[32h + l]; sub-blocks j and j + 1.
        const __m256i q = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * k), three);
        const int j = 8 * h + 2 * k;
        for (int s = 0; s < 2; ++s) {
          const __m512 dl = _mm512_set1_ps(d * static_cast<float>(b.scales[j + s] & 0xF));
          const __m512 ml = _mm512_set1_ps(dmin * static_cast<float>(b.scales[j + s] >> 4));
          const __m128i half = s == 0 ? _mm256_castsi256_si128(q) : _mm256_extracti128_si256(q, 1);
          _mm512_storeu_ps(y + 16 * s, _mm512_sub_ps(_mm512_mul_ps(dl, u8x16_ps(half)), ml));
        }
      }
    }
  }
}

void dequantize_row_q3_K__avx512(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q3_K*>(x);
  const __m256i three = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const block_q3_K& b = in[i];
    const float d = fp16_to_fp32(b.d);
    const __m256i hm = load256(b.hmask);
    for (int h = 0; h < 2; ++h) {
      const __m256i bits = load256(b.qs + 32 * h);
      for (int k = 0; k < 4; ++k, y += 32) {
        const __m256i low = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * k), three);
        // A clear hmask bit (bit 4h + k of hmask[l]) subtracts 4.
        const __m256i high = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + k), one);
        const __m256i q = _mm256_sub_epi8(low, _mm256_slli_epi16(_mm256_xor_si256(high, one), 2));
        const int j = 8 * h + 2 * k;
        for (int s = 0; s < 2; ++s) {
          const int lo = (b.scales[(j + s) % 8] >> (j + s < 8 ? 0 : 4)) & 0xF;
          const int hi = (b.scales[8 + (j + s) % 4] >> (2 * ((j + s) / 4))) & 3;
          const __m512 dl = _mm512_set1_ps(d * static_cast<float>((lo | hi << 4) - 32));
          const __m128i half = s == 0 ? _mm256_castsi256_si128(q) : _mm256_extracti128_si256(q, 1);
          _mm512_storeu_ps(y + 16 * s, _mm512_mul_ps(dl, i8x16_ps(half)));
        }
      }
    }
  }
}

void dequantize_row_q5_K__avx512(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q5_K*>(x);
  const __m256i m4 = _mm256_set1_epi8(0x0f), one = _mm256_set1_epi8(1);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const block_q5_K& b = in[i];
    const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
    const __m256i qh = load256(b.qh);
    for (int k = 0; k < 4; ++k) {
      const __m256i bytes = load256(b.qs + 32 * k);
      for (int s = 0; s < 2; ++s, y += 32) {
        const int j = 2 * k + s;  // sub-block: low nibbles for s = 0, high for s = 1; fifth bit j of qh
        const __m256i nib = _mm256_and_si256(s == 0 ? bytes : _mm256_srli_epi16(bytes, 4), m4);
        const __m256i q = _mm256_or_si256(nib, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, j), one), 4));
        float scale, min;
        sub_block_affine_k4(j, b.scales, d, dmin, scale, min);
        const __m512 dl = _mm512_set1_ps(scale), ml = _mm512_set1_ps(min);
        _mm512_storeu_ps(y, _mm512_sub_ps(_mm512_mul_ps(dl, u8x16_ps(_mm256_castsi256_si128(q))), ml));
        _mm512_storeu_ps(y + 16, _mm512_sub_ps(_mm512_mul_ps(dl, u8x16_ps(_mm256_extracti128_si256(q, 1))), ml));
      }
    }
  }
}

void dequantize_row_q6_K__avx512(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q6_K*>(x);
  const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(3), off = _mm256_set1_epi8(32);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const block_q6_K& b = in[i];
    const float d = fp16_to_fp32(b.d);
    for (int h = 0; h < 2; ++h) {
      const __m256i ql0 = load256(b.ql + 64 * h), ql1 = load256(b.ql + 64 * h + 32);
      const __m256i qh = load256(b.qh + 32 * h);
      const __m256i low[4] = {_mm256_and_si256(ql0, m4), _mm256_and_si256(ql1, m4),
                              _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                              _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4)};
      for (int k = 0; k < 4; ++k, y += 32) {
        const __m256i high = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), m2);
        const __m256i q = _mm256_sub_epi8(_mm256_or_si256(low[k], _mm256_slli_epi16(high, 4)), off);
        const int j = 8 * h + 2 * k;
        for (int s = 0; s < 2; ++s) {
          // d * sc * q, left to right as the scalar reference multiplies.
          const __m512 dl = _mm512_set1_ps(d * static_cast<float>(b.scales[j + s]));
          const __m128i half = s == 0 ? _mm256_castsi256_si128(q) : _mm256_extracti128_si256(q, 1);
          _mm512_storeu_ps(y + 16 * s, _mm512_mul_ps(dl, i8x16_ps(half)));
        }
      }
    }
  }
}

void dequantize_row_q8_K__avx512(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q8_K*>(x);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const __m512 d = _mm512_set1_ps(in[i].d);
    for (int j = 0; j < QK_K; j += 32, y += 32) store_scaled32(load256(in[i].qs + j), d, y);
  }
}

void dequantize_row_iq4_xs__avx512(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_iq4_xs*>(x);
  const __m256i book = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = fp16_to_fp32(in[i].d);
    for (int j = 0; j < 8; ++j, y += 32) {
      const int ls =
          ((in[i].scales_l[j / 2] >> (4 * (j % 2))) & 0x0f) | (((in[i].scales_h >> (2 * j)) & 3) << 4);
      store_scaled32(_mm256_shuffle_epi8(book, nibbles32(in[i].qs + 16 * j)),
                     _mm512_set1_ps(d * static_cast<float>(ls - 32)), y);
    }
  }
}

}  // namespace lowbit::kernels
