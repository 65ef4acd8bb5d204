// GSQ GEMV, AVX-512: y = W x on the packed codes with float32 activations.
//
// Contiguous groups (no g_idx): four rows at a time share every load of x; each row
// sums (q - z) * x (or q * x with a float minimum) per group in two accumulators and
// applies the group's scale once, so a weight costs one permute, two shifts, an and,
// a convert and an FMA for 16 lanes. Subtracting the zero point in integers keeps the
// float sums free of the cancellation that s * (sum q x - z sum x) would suffer.
// A row's arithmetic does not depend on which rows share its pass, so the result is
// the same at any thread count or row split.
//
// 4-bit codes in groups of whole 128-column chunks (g128, g256, per-channel rows of a
// multiple of 128) take a table path instead: see rows_table_4bit.
//
// Act-order layouts (g_idx): each lane gathers its column's scale and zero, decodes
// the weight exactly and accumulates w * x: the general path, slower by the gathers.
#include "target.hpp"  // first: checks the folder's flags
#include "gsq_codes.hpp"
#include "lists/declarations.hpp"
#include "common/gsq_width.hpp"

#include <vector>

namespace lowbit::kernels {
namespace {

using namespace avx512_gsq;

template <int B, bool FloatMin, int R>
void rows_grouped(const GsqMatrixRef& m, const Unpacker<B>& u, const float* x, float* y, int64_t r) {
  const int64_t groups = m.cols / m.group, chunks = (m.cols + 31) / 32, full = m.cols / 32;
  const uint32_t* rows[R];
  __m512 total[R];
  for (int i = 0; i < R; ++i) {
    rows[i] = m.qweight + (r + i) * m.words_per_row;
    total[i] = _mm512_setzero_ps();
  }
  for (int64_t g = 0; g < groups; ++g) {
    __m512 acc[R][2], ax[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    __m512i zero_point[R];
    for (int i = 0; i < R; ++i) {
      acc[i][0] = acc[i][1] = _mm512_setzero_ps();
      if constexpr (!FloatMin) zero_point[i] = _mm512_set1_epi32(m.zeros[(r + i) * groups + g]);
    }
    auto step = [&](int64_t k, ChunkMasks mk) {
      const __m512 x0 = _mm512_maskz_loadu_ps(mk.lo, x + 32 * k), x1 = _mm512_maskz_loadu_ps(mk.hi, x + 32 * k + 16);
      if constexpr (FloatMin) {
        ax[0] = _mm512_add_ps(ax[0], x0);
        ax[1] = _mm512_add_ps(ax[1], x1);
      }
#pragma GCC unroll 4
      for (int i = 0; i < R; ++i) {
        const __m512i w = chunk_words<B>(rows[i], m.words_per_row, k);
        __m512i c0 = u.codes(w, 0), c1 = u.codes(w, 1);
        if constexpr (!FloatMin) {
          c0 = _mm512_sub_epi32(c0, zero_point[i]);
          c1 = _mm512_sub_epi32(c1, zero_point[i]);
        }
        acc[i][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(c0), x0, acc[i][0]);
        acc[i][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(c1), x1, acc[i][1]);
      }
    };
    const int64_t k0 = g * m.group / 32, k1 = std::min(chunks, ((g + 1) * m.group + 31) / 32);
    const int64_t kf = std::min(k1, full);
    const ChunkMasks all(32);
    for (int64_t k = k0; k < kf; ++k) step(k, all);
    if (kf < k1) step(kf, ChunkMasks(m.cols - 32 * kf));
    for (int i = 0; i < R; ++i) {
      const int64_t gi = (r + i) * groups + g;
      total[i] = _mm512_fmadd_ps(_mm512_set1_ps(m.scales[gi]), _mm512_add_ps(acc[i][0], acc[i][1]), total[i]);
      if constexpr (FloatMin)
        total[i] = _mm512_fmadd_ps(_mm512_set1_ps(m.mins[gi]), _mm512_add_ps(ax[0], ax[1]), total[i]);
    }
  }
  for (int i = 0; i < R; ++i) y[r + i] = _mm512_reduce_add_ps(total[i]);
}

template <int B, bool FloatMin>
void row_gidx(const GsqMatrixRef& m, const Unpacker<B>& u, const float* x, float* y, int64_t r) {
  const int64_t groups = m.cols / m.group, chunks = (m.cols + 31) / 32;
  const uint32_t* row = m.qweight + r * m.words_per_row;
  const float* s = m.scales + r * groups;
  const int32_t* z = m.zeros + r * groups;
  const float* mn = FloatMin ? m.mins + r * groups : nullptr;
  __m512 t[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t k = 0; k < chunks; ++k) {
    const ChunkMasks mk(std::min<int64_t>(32, m.cols - 32 * k));
    const __m512i w = chunk_words<B>(row, m.words_per_row, k);
    for (int h = 0; h < 2; ++h) {
      const __mmask16 lanes = h ? mk.hi : mk.lo;
      const int64_t c = 32 * k + 16 * h;
      const __m512i code = u.codes(w, h);
      const __m512i gi = _mm512_maskz_loadu_epi32(lanes, m.g_idx + c);
      const __m512 sv = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), lanes, gi, s, 4);
      __m512 wv;
      if constexpr (FloatMin) {
        const __m512 mv = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), lanes, gi, mn, 4);
        wv = _mm512_add_ps(_mm512_mul_ps(sv, _mm512_cvtepi32_ps(code)), mv);
      } else {
        const __m512i zv = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), lanes, gi, z, 4);
        wv = _mm512_mul_ps(sv, _mm512_cvtepi32_ps(_mm512_sub_epi32(code, zv)));
      }
      t[h] = _mm512_mask3_fmadd_ps(wv, _mm512_maskz_loadu_ps(lanes, x + c), t[h], lanes);
    }
  }
  y[r] = _mm512_reduce_add_ps(_mm512_add_ps(t[0], t[1]));
}

// 4-bit codes, groups of whole 128-column chunks: each row's 16 decoded values of a
// group sit in one register (T[q] = s * float(q - z), or s * float(q) + min: the bytes
// decode_value gives), and vpermps looks weights up by their low 4 index bits. Lane i
// of a chunk's 16 words holds codes 8i .. 8i+7, so shifting the words right by 4j puts
// code 8i + j in lane i, no mask needed; x is permuted once per call to match
// (xp[16j + i] = x[8i + j] per chunk). Per 16 weights: a shift, a permute, an FMA.
void permute_x_4bit(const float* x, int64_t cols, std::vector<float>& xp) {
  xp.resize(static_cast<size_t>(cols));
  const __m512i lane8 = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(8));
  for (int64_t k = 0; k < cols / 128; ++k)
    for (int j = 0; j < 8; ++j)
      _mm512_storeu_ps(xp.data() + 128 * k + 16 * j,
                       _mm512_i32gather_ps(_mm512_add_epi32(lane8, _mm512_set1_epi32(j)), x + 128 * k, 4));
}

template <bool FloatMin, int R>
void rows_table_4bit(const GsqMatrixRef& m, const float* xp, float* y, int64_t r) {
  const int64_t groups = m.cols / m.group, chunks_per_group = m.group / 128;
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512 acc[R][2];
  for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t g = 0; g < groups; ++g) {
    __m512 table[R];
    for (int i = 0; i < R; ++i) {
      const int64_t gi = (r + i) * groups + g;
      const __m512 s = _mm512_set1_ps(m.scales[gi]);
      if constexpr (FloatMin)
        table[i] = _mm512_add_ps(_mm512_mul_ps(s, _mm512_cvtepi32_ps(iota)), _mm512_set1_ps(m.mins[gi]));
      else
        table[i] = _mm512_mul_ps(s, _mm512_cvtepi32_ps(_mm512_sub_epi32(iota, _mm512_set1_epi32(m.zeros[gi]))));
    }
    for (int64_t k = g * chunks_per_group; k < (g + 1) * chunks_per_group; ++k) {
      __m512 xv[8];
      for (int j = 0; j < 8; ++j) xv[j] = _mm512_loadu_ps(xp + 128 * k + 16 * j);
#pragma GCC unroll 4
      for (int i = 0; i < R; ++i) {
        const __m512i v = _mm512_loadu_si512(m.qweight + (r + i) * m.words_per_row + 16 * k);
        acc[i][0] = _mm512_fmadd_ps(_mm512_permutexvar_ps(v, table[i]), xv[0], acc[i][0]);
        acc[i][1] = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), table[i]), xv[1], acc[i][1]);
        acc[i][0] = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(v, 8), table[i]), xv[2], acc[i][0]);
        acc[i][1] = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(v, 12), table[i]), xv[3], acc[i][1]);
        acc[i][0] = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(v, 16), table[i]), xv[4], acc[i][0]);
        acc[i][1] = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(v, 20), table[i]), xv[5], acc[i][1]);
        acc[i][0] = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(v, 24), table[i]), xv[6], acc[i][0]);
        acc[i][1] = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(v, 28), table[i]), xv[7], acc[i][1]);
      }
    }
  }
  for (int i = 0; i < R; ++i) y[r + i] = _mm512_reduce_add_ps(_mm512_add_ps(acc[i][0], acc[i][1]));
}

template <int B>
void gemv_bits(const GsqMatrixRef& m, const float* x, float* y, int64_t r0, int64_t r1) {
  const Unpacker<B> u;
  auto run = [&]<bool FloatMin>() {
    if (B == 4 && !m.g_idx && m.group % 128 == 0) {
      thread_local std::vector<float> xp;
      permute_x_4bit(x, m.cols, xp);
      int64_t r = r0;
      for (; r + 4 <= r1; r += 4) rows_table_4bit<FloatMin, 4>(m, xp.data(), y, r);
      for (; r < r1; ++r) rows_table_4bit<FloatMin, 1>(m, xp.data(), y, r);
      return;
    }
    if (m.g_idx) {
      for (int64_t r = r0; r < r1; ++r) row_gidx<B, FloatMin>(m, u, x, y, r);
      return;
    }
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) rows_grouped<B, FloatMin, 4>(m, u, x, y, r);
    for (; r < r1; ++r) rows_grouped<B, FloatMin, 1>(m, u, x, y, r);
  };
  if (m.mins)
    run.template operator()<true>();
  else
    run.template operator()<false>();
}

}  // namespace

void gsq_gemv__avx512(const GsqMatrixRef& m, const float* x, float* y, int64_t r0, int64_t r1) {
  const bool done = with_gsq_width(m.bits, [&](auto b) { gemv_bits<decltype(b)::value>(m, x, y, r0, r1); });
  if (!done) gsq_gemv__scalar(m, x, y, r0, r1);  // widths GsqConfig does not produce
}

}  // namespace lowbit::kernels
