// GSQ GEMV, NEON: y = W x on the packed codes with float32 activations.
//
// Contiguous groups (no g_idx): each row sums (q - z) * x (or q * x with a float
// minimum, plus the group's sum of x) per group in two accumulators and applies the
// group's scale once; subtracting the zero point in integers keeps the float sums
// free of the cancellation s * (sum q x - z sum x) would suffer. Act-order layouts
// (g_idx) decode each weight exactly with its column's parameters and accumulate
// w * x. A row's arithmetic depends on nothing but the row, so the result is the
// same at any thread count or row split.
#include "cpu/arm/neon/target.hpp"  // first: checks this file's compile flags

#include <arm_neon.h>

#include "cpu/arm/neon/gsq_codes.hpp"
#include "lists/declarations.hpp"

namespace lowbit::kernels {
namespace {

// The activations of chunk k: 32 floats, zeros past the row's end.
struct ChunkX {
  float32x4_t v[8];
  ChunkX(const float* x, int64_t cols, int64_t k) {
    const int64_t n = std::min<int64_t>(32, cols - 32 * k);
    const float* p = x + 32 * k;
    alignas(16) float buf[32] = {};
    if (n < 32) {
      std::memcpy(buf, p, static_cast<size_t>(n) * 4);
      p = buf;
    }
    for (int i = 0; i < 8; ++i) v[i] = vld1q_f32(p + 4 * i);
  }
};

template <int B, bool FloatMin>
float row_grouped(const GsqMatrixRef& m, const float* x, int64_t r) {
  const int64_t groups = m.cols / m.group, chunks = (m.cols + 31) / 32;
  const uint32_t* row = m.qweight + r * m.words_per_row;
  float32x4_t total = vdupq_n_f32(0);
  for (int64_t g = 0; g < groups; ++g) {
    float32x4_t acc[2] = {vdupq_n_f32(0), vdupq_n_f32(0)}, ax = vdupq_n_f32(0);
    const int32x4_t zv = vdupq_n_s32(FloatMin ? 0 : m.zeros[r * groups + g]);
    const int64_t k0 = g * m.group / 32, k1 = std::min(chunks, ((g + 1) * m.group + 31) / 32);
    for (int64_t k = k0; k < k1; ++k) {
      const uint8x16x2_t chunk = gsq_chunk<B>(row, m.words_per_row, k);
      const ChunkX xs(x, m.cols, k);
      for (int v = 0; v < 8; ++v) {
        const uint32x4_t code = gsq_codes4<B>(chunk, v);
        float32x4_t q;
        if constexpr (FloatMin) {
          q = vcvtq_f32_u32(code);
          ax = vaddq_f32(ax, xs.v[v]);
        } else {
          q = vcvtq_f32_s32(vsubq_s32(vreinterpretq_s32_u32(code), zv));
        }
        // Codes past the row's end meet zero activations: they add nothing.
        acc[v & 1] = vfmaq_f32(acc[v & 1], q, xs.v[v]);
      }
    }
    const int64_t gi = r * groups + g;
    total = vfmaq_f32(total, vaddq_f32(acc[0], acc[1]), vdupq_n_f32(m.scales[gi]));
    if constexpr (FloatMin) total = vfmaq_f32(total, ax, vdupq_n_f32(m.mins[gi]));
  }
  return vaddvq_f32(total);
}

template <int B, bool FloatMin>
float row_gidx(const GsqMatrixRef& m, const float* x, int64_t r) {
  const int64_t groups = m.cols / m.group, chunks = (m.cols + 31) / 32;
  const uint32_t* row = m.qweight + r * m.words_per_row;
  const float* s = m.scales + r * groups;
  const int32_t* z = m.zeros + r * groups;
  const float* mn = FloatMin ? m.mins + r * groups : nullptr;
  float32x4_t t[2] = {vdupq_n_f32(0), vdupq_n_f32(0)};
  for (int64_t k = 0; k < chunks; ++k) {
    const uint8x16x2_t chunk = gsq_chunk<B>(row, m.words_per_row, k);
    const ChunkX xs(x, m.cols, k);
    for (int v = 0; v < 8; ++v) {
      const int64_t c = 32 * k + 4 * v;
      if (c >= m.cols) break;
      const int64_t n = std::min<int64_t>(4, m.cols - c);
      // Lanes past the row keep zero parameters and meet zero activations.
      alignas(16) float sa[4] = {}, ma[4] = {};
      alignas(16) int32_t za[4] = {};
      for (int64_t l = 0; l < n; ++l) {
        const int32_t g = m.g_idx[c + l];
        sa[l] = s[g];
        if constexpr (FloatMin) ma[l] = mn[g];
        else za[l] = z[g];
      }
      const uint32x4_t code = gsq_codes4<B>(chunk, v);
      float32x4_t w;
      if constexpr (FloatMin) w = vaddq_f32(vmulq_f32(vld1q_f32(sa), vcvtq_f32_u32(code)), vld1q_f32(ma));
      else w = vmulq_f32(vld1q_f32(sa), vcvtq_f32_s32(vsubq_s32(vreinterpretq_s32_u32(code), vld1q_s32(za))));
      t[v & 1] = vfmaq_f32(t[v & 1], w, xs.v[v]);
    }
  }
  return vaddvq_f32(vaddq_f32(t[0], t[1]));
}

template <int B>
void gemv_bits(const GsqMatrixRef& m, const float* x, float* y, int64_t r0, int64_t r1) {
  auto run = [&]<bool FloatMin>() {
    for (int64_t r = r0; r < r1; ++r)
      y[r] = m.g_idx ? row_gidx<B, FloatMin>(m, x, r) : row_grouped<B, FloatMin>(m, x, r);
  };
  if (m.mins)
    run.template operator()<true>();
  else
    run.template operator()<false>();
}

}  // namespace

void gsq_gemv__neon(const GsqMatrixRef& m, const float* x, float* y, int64_t r0, int64_t r1) {
  const bool done = with_gsq_width(m.bits, [&](auto b) { gemv_bits<decltype(b)::value>(m, x, y, r0, r1); });
  if (!done) gsq_gemv__scalar(m, x, y, r0, r1);  // widths GsqConfig does not produce
}

}  // namespace lowbit::kernels
