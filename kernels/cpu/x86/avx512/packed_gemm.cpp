// AVX-512 (F/BW, no VNNI) packed GEMM, for the AVX-512 CPUs without VNNI (Skylake-X):
// the AVX2 variant's exact arithmetic at twice the width. Levels are widened to int16
// (maddubs would saturate: a stored activation byte reaches 255, a level -128) and
// multiplied by the activation codes (q - 128, int16) with vpmaddwd, one register per
// eight rows and four columns; the two pair sums of each row are joined by two
// permutes and an add after the block. Up to eight activation rows share each block's
// widened levels. Then the scalar reference's fused multiply-adds per lane, in its
// order (the offset's only where it is not zero), so the result equals
// packed_gemm__scalar bit for bit. VNNI CPUs run packed_gemm__avx512vnni instead.
#include "cpu/x86/avx512/target.hpp"  // first: checks this file's compile flags

#include <immintrin.h>

#include <cstring>
#include <vector>

#include "cpu/packed_panels.hpp"
#include "lists/declarations.hpp"

namespace lowbit::kernels {
namespace {

// The activation codes q - 128 as int16, [row][block][32]: each four-column group is
// then one 8-byte broadcast.
void widen_activations(const PackedActivationBlock* acts, int64_t count, int16_t* out) {
  const __m512i offset = _mm512_set1_epi16(128);
  for (int64_t i = 0; i < count; ++i)
    _mm512_storeu_si512(out + 32 * i,
                        _mm512_sub_epi16(_mm512_cvtepu8_epi16(_mm256_loadu_si256(
                                             reinterpret_cast<const __m256i*>(acts[i].q))),
                                         offset));
}

template <int kBatch>
void panel_times_batch(const PackedPanelBlock* panel, const PackedActivationBlock* acts, const int16_t* codes,
                       int64_t blocks, float* y, int64_t ldy, int rows) {
  // Lanes 2r, 2r + 1 of a pair-sum register are row r's two column pairs; these pick
  // the first and the second of every pair from rows 0..7 (lo) then 8..15 (hi).
  const __m512i first = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i second = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  __m512 acc[kBatch];
  for (int b = 0; b < kBatch; ++b) acc[b] = _mm512_setzero_ps();
  for (int64_t k = 0; k < blocks; ++k) {
    const PackedPanelBlock& p = panel[k];
    __m512i s_lo[kBatch], s_hi[kBatch];  // rows 0..7, rows 8..15
    for (int b = 0; b < kBatch; ++b) s_lo[b] = s_hi[b] = _mm512_setzero_si512();
    for (int g = 0; g < 8; ++g) {
      const __m512i w_lo = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.codes[g][0])));
      const __m512i w_hi = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.codes[g][8])));
      for (int b = 0; b < kBatch; ++b) {
        int64_t four;
        std::memcpy(&four, codes + (b * blocks + k) * 32 + 4 * g, 8);
        const __m512i a = _mm512_set1_epi64(four);
        s_lo[b] = _mm512_add_epi32(s_lo[b], _mm512_madd_epi16(w_lo, a));
        s_hi[b] = _mm512_add_epi32(s_hi[b], _mm512_madd_epi16(w_hi, a));
      }
    }
    const __m512 scale = _mm512_loadu_ps(p.scale), offset = _mm512_loadu_ps(p.offset);
    const __mmask16 has_offset = _mm512_cmp_ps_mask(offset, _mm512_setzero_ps(), _CMP_NEQ_UQ);
    for (int b = 0; b < kBatch; ++b) {
      const __m512i isum = _mm512_add_epi32(_mm512_permutex2var_epi32(s_lo[b], first, s_hi[b]),
                                            _mm512_permutex2var_epi32(s_lo[b], second, s_hi[b]));
      const PackedActivationBlock& a = acts[b * blocks + k];
      acc[b] = _mm512_fmadd_ps(_mm512_mul_ps(scale, _mm512_set1_ps(a.d)), _mm512_cvtepi32_ps(isum), acc[b]);
      // A zero offset's fma is skipped, as in the reference.
      if (has_offset != 0) acc[b] = _mm512_mask3_fmadd_ps(offset, _mm512_set1_ps(a.dsum), acc[b], has_offset);
    }
  }
  const __mmask16 valid = static_cast<__mmask16>((1u << rows) - 1);
  for (int b = 0; b < kBatch; ++b) _mm512_mask_storeu_ps(y + b * ldy, valid, acc[b]);
}

template <int kBatch>
void tile(const PackedPanelBlock* panel, const PackedActivationBlock* acts, int64_t blocks, float* y, int64_t ldy,
          int rows, std::vector<int16_t>& codes) {
  codes.resize(static_cast<size_t>(kBatch * blocks * 32));
  widen_activations(acts, kBatch * blocks, codes.data());
  panel_times_batch<kBatch>(panel, acts, codes.data(), blocks, y, ldy, rows);
}

}  // namespace

void packed_gemm__avx512(const PackedPanelBlock* panels, const PackedActivationBlock* acts, int64_t blocks,
                         int64_t batch, float* y, int64_t ldy, int all_rows) {
  thread_local std::vector<int16_t> codes;
  each_panel(panels, blocks, y, all_rows, [&](const PackedPanelBlock* panel, float* out, int rows) {
    int64_t b = 0;
    for (; b + 8 <= batch; b += 8) tile<8>(panel, acts + b * blocks, blocks, out + b * ldy, ldy, rows, codes);
    for (; b + 4 <= batch; b += 4) tile<4>(panel, acts + b * blocks, blocks, out + b * ldy, ldy, rows, codes);
    for (; b < batch; ++b) tile<1>(panel, acts + b * blocks, blocks, out + b * ldy, ldy, rows, codes);
  });
}

}  // namespace lowbit::kernels
