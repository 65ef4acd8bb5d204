// GSQ decoder, NEON: 4 weights per step, each computed with decode_value's float
// operations (s * float(q - z), or s * float(q) + min; no FMA, the folder builds with
// -ffp-contract=off) so the bytes equal the scalar reference's. Contiguous groups
// take one scale per 32-code chunk (groups are multiples of 32 codes, or the whole
// row); act-order layouts look up each column's parameters.
#include "cpu/arm/neon/target.hpp"  // first: checks this file's compile flags

#include <arm_neon.h>

#include "cpu/arm/neon/gsq_codes.hpp"
#include "lists/declarations.hpp"

namespace lowbit::kernels {
namespace {

template <int B, bool FloatMin, bool Gidx>
void decode_row(const GsqMatrixRef& m, float* out, int64_t r) {
  const int64_t groups = m.cols / m.group, chunks = (m.cols + 31) / 32;
  const uint32_t* row = m.qweight + r * m.words_per_row;
  const float* s = m.scales + r * groups;
  const int32_t* z = m.zeros + r * groups;
  const float* mn = FloatMin ? m.mins + r * groups : nullptr;
  for (int64_t k = 0; k < chunks; ++k) {
    const uint8x16x2_t chunk = gsq_chunk<B>(row, m.words_per_row, k);
    float32x4_t sv = vdupq_n_f32(0), mv = vdupq_n_f32(0);
    int32x4_t zv = vdupq_n_s32(0);
    if constexpr (!Gidx) {
      const int64_t g = 32 * k / m.group;
      sv = vdupq_n_f32(s[g]);
      if constexpr (FloatMin) mv = vdupq_n_f32(mn[g]);
      else zv = vdupq_n_s32(z[g]);
    }
    for (int v = 0; v < 8; ++v) {
      const int64_t c = 32 * k + 4 * v;
      if (c >= m.cols) break;
      const int64_t n = std::min<int64_t>(4, m.cols - c);
      if constexpr (Gidx) {
        alignas(16) float sa[4] = {}, ma[4] = {};
        alignas(16) int32_t za[4] = {};
        for (int64_t l = 0; l < n; ++l) {
          const int32_t g = m.g_idx[c + l];
          sa[l] = s[g];
          if constexpr (FloatMin) ma[l] = mn[g];
          else za[l] = z[g];
        }
        sv = vld1q_f32(sa);
        if constexpr (FloatMin) mv = vld1q_f32(ma);
        else zv = vld1q_s32(za);
      }
      const uint32x4_t code = gsq_codes4<B>(chunk, v);
      float32x4_t w;
      if constexpr (FloatMin) w = vaddq_f32(vmulq_f32(sv, vcvtq_f32_u32(code)), mv);
      else w = vmulq_f32(sv, vcvtq_f32_s32(vsubq_s32(vreinterpretq_s32_u32(code), zv)));
      if (n == 4) {
        vst1q_f32(out + c, w);
      } else {
        alignas(16) float tmp[4];
        vst1q_f32(tmp, w);
        std::memcpy(out + c, tmp, static_cast<size_t>(n) * 4);
      }
    }
  }
}

template <int B>
void decode_bits(const GsqMatrixRef& m, float* out, int64_t ld, int64_t r0, int64_t r1) {
  auto run = [&]<bool FloatMin, bool Gidx>() {
    for (int64_t r = r0; r < r1; ++r) decode_row<B, FloatMin, Gidx>(m, out + r * ld, r);
  };
  if (m.mins)
    m.g_idx ? run.template operator()<true, true>() : run.template operator()<true, false>();
  else
    m.g_idx ? run.template operator()<false, true>() : run.template operator()<false, false>();
}

}  // namespace

void gsq_dequantize__neon(const GsqMatrixRef& m, float* out, int64_t ld, int64_t r0, int64_t r1) {
  const bool done = with_gsq_width(m.bits, [&](auto b) { decode_bits<decltype(b)::value>(m, out, ld, r0, r1); });
  if (!done) gsq_dequantize__scalar(m, out, ld, r0, r1);  // widths GsqConfig does not produce
}

}  // namespace lowbit::kernels
