// GSQ x Q8_0 GEMV, AVX-512 VNNI: the integer products of weight codes (u8) and
// activation codes (s8) by vpdpbusd, 64 per instruction, exact in int32.
//
// The activations are repacked once per call into 128-column chunks (four Q8_0
// blocks), in the orders the weight codes come out of their words cheapest: for 4 bits
// the even and the odd codes apart (an and of the packed bytes gives codes 0, 2, 4...,
// a shift and an and 1, 3, 5...); for the other widths block L's codes 0..15 in
// 128-bit lane L of one vector and 16..31 in lane L of another (8-bit codes get there
// by one lane shuffle, 2/3/5/6-bit ones through the dword unpacker, narrowed to bytes).
// Either way dword lane i of the two vpdpbusd sums covers 8 codes of block i/4. Per
// lane, with X the sum of those 8 activation codes, the products accumulate onto
// -z X, so the zero point comes off in integers (P - z X, exact), and one FMA applies
// d_block * s_group. (Folding z into a per-row float term instead saves two
// operations but cancels: low-bit per-channel rows miss the 1e-5 tolerance.)
//
// Four rows at a time share the repacked activations. A row's arithmetic does not
// depend on which rows share its pass: the same y at any thread count or row split.
// Act-order layouts (g_idx) change groups inside a block and take a float path:
// each weight decoded exactly (gathered scale and zero) times d * xq.
#include "target.hpp"  // first: checks the folder's flags
#include "../avx512/gsq_codes.hpp"
#include "lists/declarations.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"
#include "common/gsq_width.hpp"
#include "cpu/x86/prefetch.hpp"

#include <vector>

namespace lowbit::kernels {
namespace {

using namespace avx512_gsq;

struct alignas(64) Chunk {
  int8_t a[64];       // lane L: codes 0..15 of block 4k + L
  int8_t b[64];       // lane L: codes 16..31
  int8_t even[64];    // byte j: code 2j of the chunk (pairs with 4-bit low nibbles)
  int8_t odd[64];     // byte j: code 2j + 1 (high nibbles)
  float d[16];        // lane i: scale of block i/4 (0 past the row)
  int32_t minus_xsum[16];  // lane i: minus the sum of the 8 activation codes its products cover
  float dxsum[16];    // d * xsum (float minimum layouts)
  int32_t group[16];  // lane i: group of block i/4, relative to first_group
  int64_t first_group;
};

void repack(const block_q8_0* x, const GsqMatrixRef& m, std::vector<Chunk>& out) {
  const int64_t blocks = m.cols / 32, chunks = (blocks + 3) / 4;
  out.resize(static_cast<size_t>(chunks));
  const __m512i ones = _mm512_set1_epi8(1);
  const __m512i lane_block = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
  for (int64_t k = 0; k < chunks; ++k) {
    Chunk& c = out[static_cast<size_t>(k)];
    __m512i a = _mm512_setzero_si512(), b = _mm512_setzero_si512();
    alignas(16) float d[4] = {0, 0, 0, 0};
    alignas(16) int32_t g[4] = {0, 0, 0, 0};
    c.first_group = 128 * k / m.group;
    for (int L = 0; L < 4 && 4 * k + L < blocks; ++L) {
      const block_q8_0& blk = x[4 * k + L];
      const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.qs));
      const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.qs + 16));
      // Lane inserts need an immediate lane number.
      switch (L) {
        case 0: a = _mm512_inserti32x4(a, lo, 0), b = _mm512_inserti32x4(b, hi, 0); break;
        case 1: a = _mm512_inserti32x4(a, lo, 1), b = _mm512_inserti32x4(b, hi, 1); break;
        case 2: a = _mm512_inserti32x4(a, lo, 2), b = _mm512_inserti32x4(b, hi, 2); break;
        default: a = _mm512_inserti32x4(a, lo, 3), b = _mm512_inserti32x4(b, hi, 3); break;
      }
      d[L] = fp16_to_fp32(blk.d);
      g[L] = static_cast<int32_t>(32 * (4 * k + L) / m.group - c.first_group);
    }
    _mm512_store_si512(c.a, a);
    _mm512_store_si512(c.b, b);
    // Each 128-bit lane's even bytes to its low qword, odd bytes to its high qword;
    // n0's lanes are then (block 0 codes 0..15, block 1 0..15, block 0 16..31, block 1
    // 16..31), n1's the same for blocks 2 and 3, and the qwords gather in code order.
    const __m512i evens_first = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15));
    const __m512i n0 = _mm512_shuffle_epi8(_mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(1, 0, 1, 0)), evens_first);
    const __m512i n1 = _mm512_shuffle_epi8(_mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(3, 2, 3, 2)), evens_first);
    _mm512_store_si512(c.even, _mm512_permutex2var_epi64(n0, _mm512_setr_epi64(0, 4, 2, 6, 8, 12, 10, 14), n1));
    _mm512_store_si512(c.odd, _mm512_permutex2var_epi64(n0, _mm512_setr_epi64(1, 5, 3, 7, 9, 13, 11, 15), n1));
    const __m512i xsum = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, a), ones, b);
    const __m512 dv = _mm512_permutexvar_ps(lane_block, _mm512_castps128_ps512(_mm_load_ps(d)));
    _mm512_store_si512(c.minus_xsum, _mm512_sub_epi32(_mm512_setzero_si512(), xsum));
    _mm512_store_ps(c.d, dv);
    _mm512_store_ps(c.dxsum, _mm512_mul_ps(dv, _mm512_cvtepi32_ps(xsum)));
    _mm512_store_si512(c.group, _mm512_permutexvar_epi32(lane_block, _mm512_castsi128_si512(_mm_load_si128(
                                                                         reinterpret_cast<const __m128i*>(g)))));
  }
}

// The codes of chunk k of a row as two byte vectors (ua, ub) that pair with the
// activations (a, b), or for 4 bits with (even, odd): in both pairings dword lane i of
// the products covers 8 codes of block i/4.
template <int B>
struct ChunkCodes {
  Unpacker<B> u;
  const __m512i nibble = _mm512_set1_epi8(0x0F);

  void operator()(const uint32_t* row, int64_t words_per_row, int64_t cols, int64_t k, __m512i& ua,
                  __m512i& ub) const {
    if constexpr (B == 4) {
      const int64_t n = std::min<int64_t>(16, words_per_row - 16 * k);
      const __m512i v = _mm512_maskz_loadu_epi32(static_cast<__mmask16>((1u << n) - 1), row + 16 * k);
      ua = _mm512_and_si512(v, nibble);                          // codes 2j: pair with Chunk::even
      ub = _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble);    // codes 2j + 1: with Chunk::odd
    } else if constexpr (B == 8) {
      const int64_t n = std::min<int64_t>(32, words_per_row - 32 * k);
      const __m512i v0 = _mm512_maskz_loadu_epi32(static_cast<__mmask16>(n >= 16 ? 0xFFFFu : (1u << n) - 1), row + 32 * k);
      const __m512i v1 = _mm512_maskz_loadu_epi32(static_cast<__mmask16>(n >= 32 ? 0xFFFFu : n > 16 ? (1u << (n - 16)) - 1 : 0u),
                                                  row + 32 * k + 16);
      ua = _mm512_shuffle_i64x2(v0, v1, _MM_SHUFFLE(2, 0, 2, 0));
      ub = _mm512_shuffle_i64x2(v0, v1, _MM_SHUFFLE(3, 1, 3, 1));
    } else {
      __m128i a[4], b[4];
      for (int L = 0; L < 4; ++L) {
        if (128 * k + 32 * L >= cols) {
          a[L] = b[L] = _mm_setzero_si128();
          continue;
        }
        const __m512i w = chunk_words<B>(row, words_per_row, 4 * k + L);
        a[L] = _mm512_cvtepi32_epi8(u.codes(w, 0));
        b[L] = _mm512_cvtepi32_epi8(u.codes(w, 1));
      }
      ua = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(a[1], a[0])), _mm256_set_m128i(a[3], a[2]), 1);
      ub = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(b[1], b[0])), _mm256_set_m128i(b[3], b[2]), 1);
    }
  }
};

// Each row's codes (rows of 2 KiB and more) are prefetched ahead into L2
// (cpu/x86/prefetch.hpp). Without it the kernel read memory at 0.35 of the single-core
// ceiling while computing at 31 GB/s in L2: four interleaved row streams kept too few
// lines in flight (int4 g128, one thread, Zen 4: 1 KiB and 4 KiB ahead 0.41-0.43,
// 16 KiB 0.73-0.85, 32 and 64 KiB 0.66-0.75; docs/benchmarks.md).

// Rows r .. r+R-1, contiguous groups. Uniform: every chunk lies in one group
// (group a multiple of 128, or one group per row), so its parameters are broadcasts.
template <int B, bool FloatMin, bool Uniform, int R>
void rows_grouped(const GsqMatrixRef& m, const std::vector<Chunk>& xc, const ChunkCodes<B>& codes, float* y, int64_t r) {
  const int64_t groups = m.cols / m.group;
  const bool prefetch = x86_prefetch::worth_prefetching(static_cast<size_t>(m.words_per_row) * 4);
  __m512 total[R];
  for (int i = 0; i < R; ++i) total[i] = _mm512_setzero_ps();
  for (size_t k = 0; k < xc.size(); ++k) {
    const Chunk& c = xc[k];
    const __m512i a = _mm512_load_si512(B == 4 ? c.even : c.a), b = _mm512_load_si512(B == 4 ? c.odd : c.b);
    const __m512 d = _mm512_load_ps(c.d);
    const __m512i minus_xsum = _mm512_load_si512(c.minus_xsum);
    const __mmask16 gmask = static_cast<__mmask16>((1u << std::min<int64_t>(4, groups - c.first_group)) - 1);
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) {
      const int64_t base = (r + i) * groups + c.first_group;
      if (prefetch)  // the chunk's B * 16 bytes of codes
        x86_prefetch::prefetch_ahead<B * 16>(m.qweight + (r + i) * m.words_per_row + B * 4 * static_cast<int64_t>(k));
      __m512i ua, ub;
      codes(m.qweight + (r + i) * m.words_per_row, m.words_per_row, m.cols, static_cast<int64_t>(k), ua, ub);
      __m512 s;
      if constexpr (Uniform) {
        s = _mm512_set1_ps(m.scales[base]);
      } else {
        s = _mm512_permutexvar_ps(_mm512_load_si512(c.group), _mm512_maskz_loadu_ps(gmask, m.scales + base));
      }
      if constexpr (FloatMin) {
        const __m512 mn = Uniform ? _mm512_set1_ps(m.mins[base])
                                  : _mm512_permutexvar_ps(_mm512_load_si512(c.group), _mm512_maskz_loadu_ps(gmask, m.mins + base));
        const __m512i p = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ua, a), ub, b);
        total[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(d, s), total[i]);
        total[i] = _mm512_fmadd_ps(_mm512_load_ps(c.dxsum), mn, total[i]);
      } else {
        const __m512i z = Uniform ? _mm512_set1_epi32(m.zeros[base])
                                  : _mm512_permutexvar_epi32(_mm512_load_si512(c.group),
                                                             _mm512_maskz_loadu_epi32(gmask, m.zeros + base));
        // The products accumulate onto -z X, so the sum comes out as P - z X, exact.
        const __m512i minus_zx = _mm512_mullo_epi32(z, minus_xsum);
        const __m512i exact = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(minus_zx, ua, a), ub, b);
        total[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(exact), _mm512_mul_ps(d, s), total[i]);
      }
    }
  }
  for (int i = 0; i < R; ++i) y[r + i] = _mm512_reduce_add_ps(total[i]);
}

// One act-order row: each weight decoded as decode_value does, times d * xq, in float.
template <int B, bool FloatMin>
void row_gidx(const GsqMatrixRef& m, const std::vector<Chunk>& xc, const Unpacker<B>& u, float* y, int64_t r) {
  const int64_t groups = m.cols / m.group, blocks = m.cols / 32;
  const uint32_t* row = m.qweight + r * m.words_per_row;
  const float* s = m.scales + r * groups;
  const int32_t* z = m.zeros + r * groups;
  const float* mn = FloatMin ? m.mins + r * groups : nullptr;
  __m512 t[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const Chunk& c = xc[static_cast<size_t>(blk / 4)];
    const int L = static_cast<int>(blk % 4);
    const __m512i w = chunk_words<B>(row, m.words_per_row, blk);
    const __m512 d = _mm512_set1_ps(c.d[4 * L]);
    for (int h = 0; h < 2; ++h) {
      const __m512i code = u.codes(w, h);
      const __m512i gi = _mm512_loadu_si512(m.g_idx + 32 * blk + 16 * h);
      const __m512 sv = _mm512_i32gather_ps(gi, s, 4);
      __m512 wv;
      if constexpr (FloatMin) {
        wv = _mm512_add_ps(_mm512_mul_ps(sv, _mm512_cvtepi32_ps(code)), _mm512_i32gather_ps(gi, mn, 4));
      } else {
        const __m512i zv = _mm512_i32gather_epi32(gi, z, 4);
        wv = _mm512_mul_ps(sv, _mm512_cvtepi32_ps(_mm512_sub_epi32(code, zv)));
      }
      const __m128i xq = _mm_load_si128(reinterpret_cast<const __m128i*>((h ? c.b : c.a) + 16 * L));
      const __m512 xv = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(xq)));
      t[h] = _mm512_fmadd_ps(wv, xv, t[h]);
    }
  }
  y[r] = _mm512_reduce_add_ps(_mm512_add_ps(t[0], t[1]));
}

template <int B>
void gemv_bits(const GsqMatrixRef& m, const std::vector<Chunk>& xc, float* y, int64_t r0, int64_t r1) {
  const ChunkCodes<B> codes;
  auto run = [&]<bool FloatMin, bool Uniform>() {
    if (m.g_idx) {
      for (int64_t r = r0; r < r1; ++r) row_gidx<B, FloatMin>(m, xc, codes.u, y, r);
      return;
    }
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) rows_grouped<B, FloatMin, Uniform, 4>(m, xc, codes, y, r);
    for (; r < r1; ++r) rows_grouped<B, FloatMin, Uniform, 1>(m, xc, codes, y, r);
  };
  const bool uniform = m.group % 128 == 0 || m.group == m.cols;
  if (m.mins)
    uniform ? run.template operator()<true, true>() : run.template operator()<true, false>();
  else
    uniform ? run.template operator()<false, true>() : run.template operator()<false, false>();
}

}  // namespace

void gsq_gemv_q8__avx512vnni(const GsqMatrixRef& m, const void* xq, float* y, int64_t r0, int64_t r1) {
  thread_local std::vector<Chunk> xc;
  const bool done = with_gsq_width(m.bits, [&](auto b) {
    repack(static_cast<const block_q8_0*>(xq), m, xc);
    gemv_bits<decltype(b)::value>(m, xc, y, r0, r1);
  });
  if (!done) gsq_gemv_q8__scalar(m, xq, y, r0, r1);  // widths GsqConfig does not produce
}

}  // namespace lowbit::kernels
