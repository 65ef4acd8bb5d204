// AVX-512 (F/BW/VL) dot products: the AVX2 variants' integer scheme at twice the
// width — two 32-element blocks, or two 32-element sub-blocks of a K-quant, per
// instruction. Each block's integer sum is exact, as in the scalar reference.
#include "cpu/x86/avx512/target.hpp"  // first: checks this file's compile flags

#include <immintrin.h>


#include <cstring>

#include "cpu/x86/avx2/codes.hpp"  // 256-bit code extraction (internal linkage, compiled here with these flags)
#include "common/kquant_scales.hpp"
#include "cpu/x86/prefetch.hpp"
#include "lists/declarations.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }
inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m512i join(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }
inline __m512 join_ps(float lo, float hi) {
  return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_set1_ps(lo)),
                                             _mm256_castps_pd(_mm256_set1_ps(hi)), 1));
}
inline __m512i join_epi16(int lo, int hi) {
  return join(_mm256_set1_epi16(static_cast<int16_t>(lo)), _mm256_set1_epi16(static_cast<int16_t>(hi)));
}

// Unsigned codes (at most 63) times signed activations, four products per int32 lane.
inline __m512i dot_u8_i8(__m512i u, __m512i s) {
  return _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1));
}
// Signed times signed: x's sign moves onto y (AVX-512 has no sign_epi8).
inline __m512i pairs_i8_i8(__m512i x, __m512i y) {
  const __mmask64 negative = _mm512_movepi8_mask(x);
  return _mm512_maddubs_epi16(_mm512_abs_epi8(x), _mm512_mask_sub_epi8(y, negative, _mm512_setzero_si512(), y));
}
inline __m256i dot256_i8_i8(__m256i x, __m256i y) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x)), _mm256_set1_epi16(1));
}

inline float hsum(__m512 v) { return _mm512_reduce_add_ps(v); }

// Q4_0, Q5_0, Q8_0, IQ4_NL: two blocks per step, lanes 0..7 the first, 8..15 the second.
template <class Block, class Codes>
float dot_signed(const Block* w, const block_q8_0* a, int64_t blocks, Codes codes) {
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= blocks; i += 2) {
    const __m512i x = join(codes(w[i]), codes(w[i + 1]));
    const __m512i y = join(load256(a[i].qs), load256(a[i + 1].qs));
    const __m512i isum = _mm512_madd_epi16(pairs_i8_i8(x, y), _mm512_set1_epi16(1));
    const __m512 d = join_ps(h2f(w[i].d) * h2f(a[i].d), h2f(w[i + 1].d) * h2f(a[i + 1].d));
    acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(isum), acc);
  }
  float tail = 0;
  if (i < blocks)
    tail = (h2f(w[i].d) * h2f(a[i].d)) * static_cast<float>([&] {
             const __m256i s = dot256_i8_i8(codes(w[i]), load256(a[i].qs));
             __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
             t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
             t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
             return _mm_cvtsi128_si32(t);
           }());
  return hsum(acc) + tail;
}

// Q4_1, Q5_1: unsigned codes, plus m_w * s_a per block.
template <class Block, class Codes>
float dot_with_min(const Block* w, const block_q8_1* a, int64_t blocks, Codes codes) {
  __m512 acc = _mm512_setzero_ps();
  float mins = 0, tail = 0;
  int64_t i = 0;
  for (; i + 2 <= blocks; i += 2) {
    const __m512i isum = dot_u8_i8(join(codes(w[i]), codes(w[i + 1])), join(load256(a[i].qs), load256(a[i + 1].qs)));
    const __m512 d = join_ps(h2f(w[i].d) * h2f(a[i].d), h2f(w[i + 1].d) * h2f(a[i + 1].d));
    acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(isum), acc);
    mins += h2f(w[i].m) * h2f(a[i].s) + h2f(w[i + 1].m) * h2f(a[i + 1].s);
  }
  if (i < blocks) {
    const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(codes(w[i]), load256(a[i].qs)), _mm256_set1_epi16(1));
    alignas(32) int32_t lanes[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s);
    int isum = 0;
    for (int k = 0; k < 8; ++k) isum += lanes[k];
    tail = (h2f(w[i].d) * h2f(a[i].d)) * static_cast<float>(isum) + h2f(w[i].m) * h2f(a[i].s);
  }
  return hsum(acc) + mins + tail;
}

template <class Block, bool kFifthBit>
float dot_k4(const Block* w, const block_q8_K* a, int64_t blocks) {
  __m512 acc = _mm512_setzero_ps();
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  for (int64_t i = 0; i < blocks; ++i) {
    uint8_t sc[8], mins[8];
    unpack_scales_mins_k4(w[i].scales, sc, mins);
    __m512i isum = _mm512_setzero_si512();
    // qs bytes 64m..64m+63: low nibbles are sub-blocks 4m (bytes 0..31) and 4m+2
    // (bytes 32..63), high nibbles 4m+1 and 4m+3.
    for (int m = 0; m < 2; ++m) {
      const __m512i bytes = _mm512_loadu_si512(w[i].qs + 64 * m);
      __m512i lo = _mm512_and_si512(bytes, m4);
      __m512i hi = _mm512_and_si512(_mm512_srli_epi16(bytes, 4), m4);
      if constexpr (kFifthBit) {
        const __m256i qh = load256(w[i].qh);
        const __m512i one = _mm512_set1_epi8(1);
        // Sub-block j's fifth bit is bit j of qh[l].
        const __m512i lo_shift = join(_mm256_srli_epi16(qh, 4 * m), _mm256_srli_epi16(qh, 4 * m + 2));
        const __m512i hi_shift = join(_mm256_srli_epi16(qh, 4 * m + 1), _mm256_srli_epi16(qh, 4 * m + 3));
        lo = _mm512_or_si512(lo, _mm512_slli_epi16(_mm512_and_si512(lo_shift, one), 4));
        hi = _mm512_or_si512(hi, _mm512_slli_epi16(_mm512_and_si512(hi_shift, one), 4));
      }
      const int s = 4 * m;
      const __m512i alo = join(load256(a[i].qs + 32 * s), load256(a[i].qs + 32 * (s + 2)));
      const __m512i ahi = join(load256(a[i].qs + 32 * (s + 1)), load256(a[i].qs + 32 * (s + 3)));
      isum = _mm512_add_epi32(isum, _mm512_madd_epi16(_mm512_maddubs_epi16(lo, alo), join_epi16(sc[s], sc[s + 2])));
      isum = _mm512_add_epi32(isum, _mm512_madd_epi16(_mm512_maddubs_epi16(hi, ahi), join_epi16(sc[s + 1], sc[s + 3])));
    }
    const __m256i pair_sums = _mm256_madd_epi16(load256(a[i].bsums), _mm256_set1_epi16(1));
    const __m256i m32 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mins)));
    const __m256i summs = _mm256_mullo_epi32(pair_sums, m32);
    const float dall = a[i].d * h2f(w[i].d), dmin = a[i].d * h2f(w[i].dmin);
    acc = _mm512_fmadd_ps(_mm512_set1_ps(dall), _mm512_cvtepi32_ps(isum), acc);
    acc = _mm512_fnmadd_ps(_mm512_set1_ps(dmin), _mm512_cvtepi32_ps(_mm512_castsi256_si512(summs)), acc);
  }
  return hsum(acc);
}

}  // namespace

float dot_q4_0_q8_0__avx512(const void* w, const void* a, int64_t n) {
  return dot_signed(static_cast<const block_q4_0*>(w), static_cast<const block_q8_0*>(a), n / QK_LEGACY,
                    [](const block_q4_0& b) { return _mm256_sub_epi8(nibbles32(b.qs), _mm256_set1_epi8(8)); });
}

float dot_q5_0_q8_0__avx512(const void* w, const void* a, int64_t n) {
  return dot_signed(static_cast<const block_q5_0*>(w), static_cast<const block_q8_0*>(a), n / QK_LEGACY,
                    [](const block_q5_0& b) { return _mm256_sub_epi8(five_bit_codes(b.qs, b.qh), _mm256_set1_epi8(16)); });
}

float dot_q8_0_q8_0__avx512(const void* w, const void* a, int64_t n) {
  return dot_signed(static_cast<const block_q8_0*>(w), static_cast<const block_q8_0*>(a), n / QK_LEGACY,
                    [](const block_q8_0& b) { return load256(b.qs); });
}

float dot_iq4_nl_q8_0__avx512(const void* w, const void* a, int64_t n) {
  const __m256i book = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
  return dot_signed(static_cast<const block_iq4_nl*>(w), static_cast<const block_q8_0*>(a), n / QK_LEGACY,
                    [book](const block_iq4_nl& b) { return _mm256_shuffle_epi8(book, nibbles32(b.qs)); });
}

float dot_q4_1_q8_1__avx512(const void* w, const void* a, int64_t n) {
  return dot_with_min(static_cast<const block_q4_1*>(w), static_cast<const block_q8_1*>(a), n / QK_LEGACY,
                      [](const block_q4_1& b) { return nibbles32(b.qs); });
}

float dot_q5_1_q8_1__avx512(const void* w, const void* a, int64_t n) {
  return dot_with_min(static_cast<const block_q5_1*>(w), static_cast<const block_q8_1*>(a), n / QK_LEGACY,
                      [](const block_q5_1& b) { return five_bit_codes(b.qs, b.qh); });
}

float dot_q4_K_q8_K__avx512(const void* w, const void* a, int64_t n) {
  return dot_k4<block_q4_K, false>(static_cast<const block_q4_K*>(w), static_cast<const block_q8_K*>(a), n / QK_K);
}

float dot_q5_K_q8_K__avx512(const void* w, const void* a, int64_t n) {
  return dot_k4<block_q5_K, true>(static_cast<const block_q5_K*>(w), static_cast<const block_q8_K*>(a), n / QK_K);
}

float dot_q6_K_q8_K__avx512(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q6_K*>(vw);
  const auto* a = static_cast<const block_q8_K*>(va);
  __m512 acc = _mm512_setzero_ps();
  const __m512i m4 = _mm512_set1_epi8(0x0f), m2 = _mm512_set1_epi8(3);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const int8_t* sc = w[i].scales;
    __m512i isum = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {
      // ql[64h..64h+63]: bytes 0..31 hold elements 32k+l for k = 0 (low) and 2 (high),
      // bytes 32..63 those of k = 1 and 3; qh[32h + l] holds their high bits at 2k.
      const __m512i ql = _mm512_loadu_si512(w[i].ql + 64 * h);
      const __m256i qh = load256(w[i].qh + 32 * h);
      const __m512i low01 = _mm512_and_si512(ql, m4);                         // k = 0 | k = 1
      const __m512i low23 = _mm512_and_si512(_mm512_srli_epi16(ql, 4), m4);  // k = 2 | k = 3
      const __m512i high01 = _mm512_and_si512(join(qh, _mm256_srli_epi16(qh, 2)), m2);
      const __m512i high23 = _mm512_and_si512(join(_mm256_srli_epi16(qh, 4), _mm256_srli_epi16(qh, 6)), m2);
      const __m512i q01 = _mm512_or_si512(low01, _mm512_slli_epi16(high01, 4));  // q + 32, 0..63
      const __m512i q23 = _mm512_or_si512(low23, _mm512_slli_epi16(high23, 4));
      const __m512i a01 = _mm512_loadu_si512(a[i].qs + 128 * h);
      const __m512i a23 = _mm512_loadu_si512(a[i].qs + 128 * h + 64);
      // Sixteen 16-element sub-blocks: lanes of 8 pair sums each get their scale.
      const int j = 8 * h;
      const __m512i sc01 = join(_mm256_set_m128i(_mm_set1_epi16(sc[j + 1]), _mm_set1_epi16(sc[j])),
                                _mm256_set_m128i(_mm_set1_epi16(sc[j + 3]), _mm_set1_epi16(sc[j + 2])));
      const __m512i sc23 = join(_mm256_set_m128i(_mm_set1_epi16(sc[j + 5]), _mm_set1_epi16(sc[j + 4])),
                                _mm256_set_m128i(_mm_set1_epi16(sc[j + 7]), _mm_set1_epi16(sc[j + 6])));
      isum = _mm512_add_epi32(isum, _mm512_madd_epi16(_mm512_maddubs_epi16(q01, a01), sc01));
      isum = _mm512_add_epi32(isum, _mm512_madd_epi16(_mm512_maddubs_epi16(q23, a23), sc23));
    }
    // Remove the +32: sum_j sc_j * 32 * bsum_j.
    const __m256i scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)));
    const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(load256(a[i].bsums), scales16), 5);
    isum = _mm512_sub_epi32(isum, _mm512_castsi256_si512(offset));
    acc = _mm512_fmadd_ps(_mm512_set1_ps(a[i].d * h2f(w[i].d)), _mm512_cvtepi32_ps(isum), acc);
  }
  return hsum(acc);
}


namespace {

// Per-lane 16-bit scales for 64 maddubs pair sums of four consecutive 16-element
// sub-blocks: eight lanes each for s0, s1, s2, s3.
inline __m512i four_scales(int s0, int s1, int s2, int s3) {
  return join(_mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(s1)), _mm_set1_epi16(static_cast<int16_t>(s0))),
              _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(s3)), _mm_set1_epi16(static_cast<int16_t>(s2))));
}

// The per-lane scales of four consecutive 16-element sub-blocks j..j+3 (eight 16-bit
// lanes each) out of the sixteen 16-bit scales: one word permute.
inline __m512i pick_four_scales(__m512i scales, int j) {
  alignas(64) int16_t index[32];
  for (int l = 0; l < 32; ++l) index[l] = static_cast<int16_t>(j + l / 8);
  return _mm512_permutexvar_epi16(_mm512_load_si512(index), scales);
}

}  // namespace

float dot_q2_K_q8_K__avx512(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q2_K*>(vw);
  const auto* a = static_cast<const block_q8_K*>(va);
  __m512 acc = _mm512_setzero_ps();
  const __m512i m2 = _mm512_set1_epi8(3);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const uint8_t* sc = w[i].scales;  // low nibble scale, high nibble min, per 16 elements
    __m512i isum = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {
      const __m256i bits = load256(w[i].qs + 32 * h);
      // Elements 128h + 32k + l sit at bits 2k of qs[32h + l]: k = 0,1 then k = 2,3.
      for (int k = 0; k < 4; k += 2) {
        const __m512i q = _mm512_and_si512(join(_mm256_srli_epi16(bits, 2 * k), _mm256_srli_epi16(bits, 2 * k + 2)), m2);
        const __m512i y = _mm512_loadu_si512(a[i].qs + 128 * h + 32 * k);
        const int j = 8 * h + 2 * k;
        const __m512i scales = four_scales(sc[j] & 0xF, sc[j + 1] & 0xF, sc[j + 2] & 0xF, sc[j + 3] & 0xF);
        isum = _mm512_add_epi32(isum, _mm512_madd_epi16(_mm512_maddubs_epi16(q, y), scales));
      }
    }
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(sc));
    const __m256i m = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0f)));
    const __m256i summs = _mm256_madd_epi16(load256(a[i].bsums), m);
    const float dall = a[i].d * h2f(w[i].d), dmin = a[i].d * h2f(w[i].dmin);
    acc = _mm512_fmadd_ps(_mm512_set1_ps(dall), _mm512_cvtepi32_ps(isum), acc);
    acc = _mm512_fnmadd_ps(_mm512_set1_ps(dmin), _mm512_cvtepi32_ps(_mm512_castsi256_si512(summs)), acc);
  }
  return hsum(acc);
}

float dot_q3_K_q8_K__avx512(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q3_K*>(vw);
  const auto* a = static_cast<const block_q8_K*>(va);
  __m512 acc = _mm512_setzero_ps();
  const __m512i m2 = _mm512_set1_epi8(3), one = _mm512_set1_epi8(1);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    alignas(16) int8_t sc[16];
    unpack_scales_q3_K(w[i].scales, sc);
    const __m256i scales16 = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(sc)));
    const __m512i scales_both = join(scales16, scales16);
    const __m256i hmask = load256(w[i].hmask);
    __m512i isum = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {
      const __m256i bits = load256(w[i].qs + 32 * h);
      for (int k = 0; k < 4; k += 2) {
        // Unsigned code low + 4 * high = q + 4; high is bit 4h + k of hmask[l].
        const __m512i low = _mm512_and_si512(join(_mm256_srli_epi16(bits, 2 * k), _mm256_srli_epi16(bits, 2 * k + 2)), m2);
        const __m512i high =
            _mm512_and_si512(join(_mm256_srli_epi16(hmask, 4 * h + k), _mm256_srli_epi16(hmask, 4 * h + k + 1)), one);
        const __m512i q = _mm512_or_si512(low, _mm512_slli_epi16(high, 2));
        const __m512i y = _mm512_loadu_si512(a[i].qs + 128 * h + 32 * k);
        const int j = 8 * h + 2 * k;
        isum = _mm512_add_epi32(
            isum, _mm512_madd_epi16(_mm512_maddubs_epi16(q, y), pick_four_scales(scales_both, j)));
      }
    }
    const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(load256(a[i].bsums), scales16), 2);
    isum = _mm512_sub_epi32(isum, _mm512_castsi256_si512(offset));
    acc = _mm512_fmadd_ps(_mm512_set1_ps(a[i].d * h2f(w[i].d)), _mm512_cvtepi32_ps(isum), acc);
  }
  return hsum(acc);
}

float dot_iq4_xs_q8_K__avx512(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_iq4_xs*>(vw);
  const auto* a = static_cast<const block_q8_K*>(va);
  const __m256i book = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int ls[8];
    for (int j = 0; j < 8; ++j)
      ls[j] = (((w[i].scales_l[j / 2] >> (4 * (j % 2))) & 0xF) | (((w[i].scales_h >> (2 * j)) & 3) << 4)) - 32;
    __m512i isum = _mm512_setzero_si512();
    for (int j = 0; j < 8; j += 2) {
      const __m512i x = join(_mm256_shuffle_epi8(book, nibbles32(w[i].qs + 16 * j)),
                             _mm256_shuffle_epi8(book, nibbles32(w[i].qs + 16 * (j + 1))));
      const __m512i y = _mm512_loadu_si512(a[i].qs + 32 * j);
      isum = _mm512_add_epi32(isum, _mm512_madd_epi16(pairs_i8_i8(x, y), join_epi16(ls[j], ls[j + 1])));
    }
    acc = _mm512_fmadd_ps(_mm512_set1_ps(a[i].d * h2f(w[i].d)), _mm512_cvtepi32_ps(isum), acc);
  }
  return hsum(acc);
}

namespace {

// The float weights are prefetched 16 KiB ahead into L2, rows of 2 KiB and more only
// (x86_prefetch::worth_prefetching, which says why): these loops compute at two to three
// times a core's read rate and the hardware prefetcher alone left them at 0.63-0.92 of
// it (F32 0.74-0.78; with the prefetch 0.80-0.93; BF16 0.63-0.90 -> 0.86-1.01: three
// alternating runs of both builds, docs/benchmarks.md).

// kWeightBytes: bytes per weight element (4 for F32, 2 for F16 / BF16).
template <int kWeightBytes, class Load16, class Scalar>
float dot_floats(const void* w, const float* a, int64_t n, Load16 load16, Scalar scalar) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  int64_t i = 0;
  const bool prefetch = x86_prefetch::worth_prefetching(static_cast<size_t>(n) * kWeightBytes);
  for (; i + 64 <= n; i += 64) {
    if (prefetch) x86_prefetch::prefetch_ahead<64 * kWeightBytes>(static_cast<const char*>(w) + i * kWeightBytes);
    for (int k = 0; k < 4; ++k) acc[k] = _mm512_fmadd_ps(load16(i + 16 * k), _mm512_loadu_ps(a + i + 16 * k), acc[k]);
  }
  float tail = 0;
  for (; i < n; ++i) tail += scalar(i) * a[i];
  return hsum(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]))) + tail;
}

}  // namespace

float dot_f32_f32__avx512(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const float*>(vw);
  return dot_floats<4>(w, static_cast<const float*>(va), n, [w](int64_t i) { return _mm512_loadu_ps(w + i); },
                    [w](int64_t i) { return w[i]; });
}

float dot_f16_f32__avx512(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const uint16_t*>(vw);
  return dot_floats<2>(
      w, static_cast<const float*>(va), n, [w](int64_t i) { return _mm512_cvtph_ps(load256(w + i)); },
      [w](int64_t i) { return fp16_to_fp32(w[i]); });
}

float dot_bf16_f32__avx512(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const uint16_t*>(vw);
  return dot_floats<2>(
      w, static_cast<const float*>(va), n,
      [w](int64_t i) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(load256(w + i)), 16)); },
      [w](int64_t i) { return bf16_to_fp32(w[i]); });
}

}  // namespace lowbit::kernels
