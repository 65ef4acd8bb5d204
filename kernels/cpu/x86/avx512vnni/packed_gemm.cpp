// AVX-512 VNNI packed GEMM: 16 weight rows in the lanes of one register, up to eight
// activation rows at a time. Per 32-column block: eight dpbusd per activation row
// (each multiplies four columns of all 16 rows by four broadcast activation bytes),
// then the scalar reference's fused multiply-adds per lane, in its order (the
// offset's only where it is not zero), so the result equals packed_gemm__scalar bit
// for bit.
#include "cpu/x86/avx512vnni/target.hpp"  // first: checks this file's compile flags

#include <immintrin.h>

#include <cstring>

#include "cpu/packed_panels.hpp"
#include "lists/declarations.hpp"

namespace lowbit::kernels {
namespace {

template <int kBatch>
void panel_times_batch(const PackedPanelBlock* panel, const PackedActivationBlock* acts, int64_t blocks, float* y,
                       int64_t ldy, int rows) {
  __m512 acc[kBatch];
  for (int b = 0; b < kBatch; ++b) acc[b] = _mm512_setzero_ps();
  for (int64_t k = 0; k < blocks; ++k) {
    const PackedPanelBlock& p = panel[k];
    // The activations are stored + 128: every sum starts from -128 * sum(levels).
    const __m512i start = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_loadu_si512(p.bias));
    __m512i isum[kBatch];
    for (int b = 0; b < kBatch; ++b) isum[b] = start;
    for (int g = 0; g < 8; ++g) {
      const __m512i w = _mm512_loadu_si512(p.codes[g]);
      for (int b = 0; b < kBatch; ++b) {
        int32_t four;
        std::memcpy(&four, acts[b * blocks + k].q + 4 * g, 4);
        isum[b] = _mm512_dpbusd_epi32(isum[b], _mm512_set1_epi32(four), w);
      }
    }
    const __m512 scale = _mm512_loadu_ps(p.scale), offset = _mm512_loadu_ps(p.offset);
    for (int b = 0; b < kBatch; ++b) {
      const PackedActivationBlock& a = acts[b * blocks + k];
      acc[b] = _mm512_fmadd_ps(_mm512_mul_ps(scale, _mm512_set1_ps(a.d)), _mm512_cvtepi32_ps(isum[b]), acc[b]);
    }
    // Rows with a zero offset skip its fma, as the scalar reference does: all of them
    // for the formats without offsets (Q4_0, Q5_0, Q8_0, IQ4_NL), a quarter of the
    // float work of a block.
    const __mmask16 has_offset = _mm512_cmp_ps_mask(offset, _mm512_setzero_ps(), _CMP_NEQ_UQ);
    if (has_offset != 0)
      for (int b = 0; b < kBatch; ++b)
        acc[b] = _mm512_mask3_fmadd_ps(offset, _mm512_set1_ps(acts[b * blocks + k].dsum), acc[b], has_offset);
  }
  const __mmask16 valid = static_cast<__mmask16>((1u << rows) - 1);
  for (int b = 0; b < kBatch; ++b) _mm512_mask_storeu_ps(y + b * ldy, valid, acc[b]);
}

}  // namespace

void packed_gemm__avx512vnni(const PackedPanelBlock* panels, const PackedActivationBlock* acts, int64_t blocks,
                             int64_t batch, float* y, int64_t ldy, int all_rows) {
  each_panel(panels, blocks, y, all_rows, [&](const PackedPanelBlock* panel, float* out, int rows) {
    int64_t b = 0;
    for (; b + 8 <= batch; b += 8) panel_times_batch<8>(panel, acts + b * blocks, blocks, out + b * ldy, ldy, rows);
    for (; b + 4 <= batch; b += 4) panel_times_batch<4>(panel, acts + b * blocks, blocks, out + b * ldy, ldy, rows);
    for (; b < batch; ++b) panel_times_batch<1>(panel, acts + b * blocks, blocks, out + b * ldy, ldy, rows);
  });
}

}  // namespace lowbit::kernels
