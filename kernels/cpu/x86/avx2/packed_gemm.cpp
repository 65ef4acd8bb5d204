// AVX2 packed GEMM, for x86 CPUs without VNNI. Without dpbusd the byte products
// have to stay exact another way: maddubs would saturate (a stored activation byte
// reaches 255, a level -128, and a pair of such products overflows int16), so the
// levels are widened to int16 and multiplied by the activation codes (q - 128, also
// int16) with madd, whose pair sums fit int32. A panel is done in two halves of
// eight rows, each half's four-column groups widened once and multiplied by up to
// four activation rows. After each block the scalar reference's fused multiply-adds
// run per lane in its order (the offset's only where it is not zero), so the result
// equals packed_gemm__scalar bit for bit.
#include "cpu/x86/avx2/target.hpp"  // first: checks this file's compile flags

#include <immintrin.h>

#include <cstring>
#include <vector>

#include "lists/declarations.hpp"

namespace lowbit::kernels {
namespace {

constexpr int kHalfRows = 8;

// The activation codes q - 128 as int16, [row][block][32], for the rows of one tile:
// each four-column group is then one 8-byte broadcast load.
void widen_activations(const PackedActivationBlock* acts, int64_t count, int16_t* out) {
  const __m256i offset = _mm256_set1_epi16(128);
  for (int64_t i = 0; i < count; ++i) {
    const uint8_t* q = acts[i].q;
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32 * i),
                        _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q))), offset));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32 * i + 16),
                        _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16))),
                                         offset));
  }
}

// The first `n` (0..8) lanes of v to y.
void store_rows(float* y, __m256 v, int n) {
  if (n >= kHalfRows) {
    _mm256_storeu_ps(y, v);
    return;
  }
  alignas(32) float lanes[kHalfRows];
  _mm256_store_ps(lanes, v);
  std::memcpy(y, lanes, sizeof(float) * static_cast<size_t>(n));
}

// Rows [8 * half, 8 * half + 8) of the panel times kBatch activation rows.
template <int kBatch>
void half_panel_times_batch(const PackedPanelBlock* panel, const PackedActivationBlock* acts, const int16_t* codes,
                            int64_t blocks, int half, float* y, int64_t ldy, int rows) {
  __m256 acc[kBatch];
  for (int b = 0; b < kBatch; ++b) acc[b] = _mm256_setzero_ps();
  for (int64_t k = 0; k < blocks; ++k) {
    const PackedPanelBlock& p = panel[k];
    // Lanes hold pair sums: s_lo rows 0..3 of the half, s_hi rows 4..7, two lanes per row.
    __m256i s_lo[kBatch], s_hi[kBatch];
    for (int b = 0; b < kBatch; ++b) s_lo[b] = s_hi[b] = _mm256_setzero_si256();
    for (int g = 0; g < 8; ++g) {
      const int8_t* w = p.codes[g][kHalfRows * half];
      const __m256i w_lo = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
      const __m256i w_hi = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 16)));
      for (int b = 0; b < kBatch; ++b) {
        int64_t four;
        std::memcpy(&four, codes + (b * blocks + k) * 32 + 4 * g, 8);
        const __m256i a = _mm256_set1_epi64x(four);
        s_lo[b] = _mm256_add_epi32(s_lo[b], _mm256_madd_epi16(w_lo, a));
        s_hi[b] = _mm256_add_epi32(s_hi[b], _mm256_madd_epi16(w_hi, a));
      }
    }
    const __m256 scale = _mm256_loadu_ps(p.scale + kHalfRows * half);
    const __m256 offset = _mm256_loadu_ps(p.offset + kHalfRows * half);
    const __m256 has_offset = _mm256_cmp_ps(offset, _mm256_setzero_ps(), _CMP_NEQ_UQ);
    const bool any_offset = _mm256_movemask_ps(has_offset) != 0;
    for (int b = 0; b < kBatch; ++b) {
      // hadd gives rows [0 1 4 5 | 2 3 6 7]; the qword permute puts them in order.
      const __m256i isum = _mm256_permute4x64_epi64(_mm256_hadd_epi32(s_lo[b], s_hi[b]), 0xD8);
      const PackedActivationBlock& a = acts[b * blocks + k];
      acc[b] = _mm256_fmadd_ps(_mm256_mul_ps(scale, _mm256_set1_ps(a.d)), _mm256_cvtepi32_ps(isum), acc[b]);
      // A zero offset's fma is skipped, as in the reference: fma(0, dsum, -0) is +0.
      if (any_offset)
        acc[b] = _mm256_blendv_ps(acc[b], _mm256_fmadd_ps(offset, _mm256_set1_ps(a.dsum), acc[b]), has_offset);
    }
  }
  for (int b = 0; b < kBatch; ++b) store_rows(y + b * ldy + kHalfRows * half, acc[b], rows - kHalfRows * half);
}

template <int kBatch>
void panel_times_batch(const PackedPanelBlock* panel, const PackedActivationBlock* acts, int64_t blocks, float* y,
                       int64_t ldy, int rows, std::vector<int16_t>& codes) {
  codes.resize(static_cast<size_t>(kBatch * blocks * 32));
  widen_activations(acts, kBatch * blocks, codes.data());
  for (int half = 0; kHalfRows * half < rows; ++half)
    half_panel_times_batch<kBatch>(panel, acts, codes.data(), blocks, half, y, ldy, rows);
}

}  // namespace

void packed_gemm__avx2(const PackedPanelBlock* panel, const PackedActivationBlock* acts, int64_t blocks,
                       int64_t batch, float* y, int64_t ldy, int rows) {
  thread_local std::vector<int16_t> codes;
  int64_t b = 0;
  for (; b + 4 <= batch; b += 4) panel_times_batch<4>(panel, acts + b * blocks, blocks, y + b * ldy, ldy, rows, codes);
  for (; b + 2 <= batch; b += 2) panel_times_batch<2>(panel, acts + b * blocks, blocks, y + b * ldy, ldy, rows, codes);
  for (; b < batch; ++b) panel_times_batch<1>(panel, acts + b * blocks, blocks, y + b * ldy, ldy, rows, codes);
}

}  // namespace lowbit::kernels
