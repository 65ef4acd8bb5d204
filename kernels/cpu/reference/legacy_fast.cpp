// The `fast` effort of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL and IQ4_XS: ggml's own
// quantizers (ggml_quantize_chunk), the same candidates, weights, rounding and float
// order, so the bytes are ggml's. Where ggml's arithmetic is undefined or breaks down
// lowbit differs, and only there:
//   - scales saturate at the largest fp16 (65504) instead of becoming Inf;
//   - an inverse scale that overflows (a subnormal d) is the largest float instead of
//     Inf, so no NaN reaches a float-to-integer conversion;
//   - a block whose importance is all zero is quantized as without importance (ggml
//     would divide 0 by 0: a zero scale for Q4_0/Q5_0, a NaN one for IQ4_NL/IQ4_XS).
// Without importance ggml rounds against a scale fixed by the block's extreme value(s)
// (Q4_0/Q5_0: the signed absmax on level -8/-16; Q4_1/Q5_1: min and max on levels 0
// and nmax; Q8_0: absmax on 127); with importance Q4_0/Q5_0 run make_qx_quants and
// Q4_1/Q5_1 make_qkx3_quants with weights imp * sqrt(sigma^2 + x^2); Q8_0 ignores the
// importance. IQ4_NL/IQ4_XS always search (weights x^2 without importance).
#include <cfloat>
#include <cmath>
#include <cstring>

#include "common/nibbles.hpp"
#include "cpu/reference/ggml_search.hpp"
#include "cpu/reference/scalar_math.hpp"
#include "lists/declarations.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {

// ---------------------------------------------------------------- ggml's searches

namespace ggml_search {

namespace {
constexpr int QK = QK_LEGACY;
constexpr float kGroupMaxEps = 1e-15f;  // ggml's GROUP_MAX_EPS
}  // namespace

int nearest_int(float v) {
  const float t = v + 12582912.0f;
  int32_t i;
  std::memcpy(&i, &t, sizeof i);
  return (i & 0x007fffff) - 0x00400000;
}

float signed_absmax(const float* x, int n) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < n; ++j)
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  return max;
}

float row_sigma2(const float* x, int64_t n) {
  float s = 0.0f;
  for (int64_t j = 0; j < n; ++j) s += x[j] * x[j];
  return s / static_cast<float>(n);
}

bool imatrix_weights(const float* x, const float* importance, float sigma2, int n, float* w) {
  if (!unit_scaled_weights(importance, n, w)) return false;
  for (int j = 0; j < n; ++j) w[j] = w[j] * std::sqrt(sigma2 + x[j] * x[j]);
  return true;
}

float make_qx(const float* x, const float* w, int nmax, int8_t* L) {
  const float max = signed_absmax(x, QK);
  if (std::fabs(max) < kGroupMaxEps) {
    for (int j = 0; j < QK; ++j) L[j] = 0;
    return 0.0f;
  }
  auto code = [nmax](float v) {
    const int l = nearest_int(v);
    return l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
  };
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0.0f, suml2 = 0.0f;
  for (int j = 0; j < QK; ++j) {
    const int l = code(iscale * x[j]);
    L[j] = static_cast<int8_t>(l + nmax);
    const float fl = static_cast<float>(l);
    sumlx += w[j] * x[j] * fl;
    suml2 += w[j] * fl * fl;
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sumlx = suml2 = 0.0f;
    for (int j = 0; j < QK; ++j) {
      const float fl = static_cast<float>(code(iscale * x[j]));
      sumlx += w[j] * x[j] * fl;
      suml2 += w[j] * fl * fl;
    }
    if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
      for (int j = 0; j < QK; ++j) L[j] = static_cast<int8_t>(nmax + code(iscale * x[j]));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

float make_qkx3(const float* x, const float* w, int nmax, uint8_t* L, float* m) {
  constexpr float rmin = -0.9f, rdelta = 0.05f;
  constexpr int nstep = 36;
  float min = x[0], max = x[0];
  float sum_w = w[0], sum_x = sum_w * x[0];
  for (int j = 1; j < QK; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
    sum_w += w[j];
    sum_x += w[j] * x[j];
  }
  if (min > 0.0f) min = 0.0f;
  if (max <= min) {
    std::memset(L, 0, QK);
    *m = min;
    return 0.0f;
  }
  auto code = [nmax](float v) {
    const int l = nearest_int(v);
    return l < 0 ? 0 : l > nmax ? nmax : l;
  };
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1.0f / iscale;
  float best_mad = 0.0f;
  for (int j = 0; j < QK; ++j) {
    L[j] = static_cast<uint8_t>(code(iscale * (x[j] - min)));
    float diff = scale * static_cast<float>(L[j]) + min - x[j];
    diff = diff * diff;
    best_mad += w[j] * diff;
  }
  uint8_t Laux[QK];
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
    for (int j = 0; j < QK; ++j) {
      const int l = code(iscale * (x[j] - min));
      Laux[j] = static_cast<uint8_t>(l);
      const float fl = static_cast<float>(l);
      sum_l += w[j] * fl;
      sum_l2 += w[j] * fl * fl;
      sum_xl += w[j] * fl * x[j];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (!(D > 0.0f)) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    if (this_min > 0.0f) {
      this_min = 0.0f;
      this_scale = sum_xl / sum_l2;
    }
    float mad = 0.0f;
    for (int j = 0; j < QK; ++j) {
      float diff = this_scale * static_cast<float>(Laux[j]) + this_min - x[j];
      diff = diff * diff;
      mad += w[j] * diff;
    }
    if (mad < best_mad) {
      std::memcpy(L, Laux, QK);
      best_mad = mad;
      scale = this_scale;
      min = this_min;
    }
  }
  *m = min;
  return scale;
}

int iq4_index(float v) {
  const int8_t* val = kIq4nlValues;
  if (v <= val[0]) return 0;
  if (v >= val[15]) return 15;
  int ml = 0, mu = 15;
  while (mu - ml > 1) {
    const int mid = (ml + mu) / 2;
    if (v < val[mid]) mu = mid;
    else ml = mid;
  }
  return v - val[mu - 1] < val[mu] - v ? mu - 1 : mu;
}

float iq4_scale(const float* x, const float* w) {
  const float max = signed_absmax(x, QK);
  if (std::fabs(max) < kGroupMaxEps) return 0.0f;
  const float v0 = static_cast<float>(kIq4nlValues[0]);
  auto fit = [&](float id, float* sumqx, float* sumq2) {
    float sx = 0.0f, s2 = 0.0f;
    for (int j = 0; j < QK; ++j) {
      const float q = static_cast<float>(kIq4nlValues[iq4_index(id * x[j])]);
      sx += w[j] * q * x[j];
      s2 += w[j] * q * q;
    }
    *sumqx = sx;
    *sumq2 = s2;
  };
  float sumqx, sumq2;
  fit(1.0f / (-max / v0), &sumqx, &sumq2);
  if (!(sumq2 > 0.0f)) return 0.0f;
  float d = sumqx / sumq2, best = d * sumqx;
  for (int itry = -7; itry <= 7; ++itry) {
    fit(static_cast<float>(itry + kIq4nlValues[0]) / max, &sumqx, &sumq2);
    if (sumq2 > 0.0f && sumqx * sumqx > best * sumq2) {
      d = sumqx / sumq2;
      best = d * sumqx;
    }
  }
  return d;
}

void iq4_weights(const float* x, const float* importance, int n, float* w) {
  float sigma2 = 0.0f;
  if (importance != nullptr) {
    for (int j = 0; j < n; ++j) sigma2 += x[j] * x[j];
    sigma2 *= 2.0f / static_cast<float>(n);
  }
  for (int ib = 0; ib < n / QK; ++ib) {
    const float* xb = x + ib * QK;
    float* wb = w + ib * QK;
    if (importance != nullptr && imatrix_weights(xb, importance + ib * QK, sigma2, QK, wb)) continue;
    for (int j = 0; j < QK; ++j) wb[j] = xb[j] * xb[j];
  }
}

float iq4_xs_super(const float* scales, int* ls) {
  constexpr int kSub = QK_K / QK;
  float max_scale = 0.0f, amax_scale = 0.0f;
  for (int ib = 0; ib < kSub; ++ib)
    if (std::fabs(scales[ib]) > amax_scale) {
      amax_scale = std::fabs(scales[ib]);
      max_scale = scales[ib];
    }
  const float d = -max_scale / 32.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int ib = 0; ib < kSub; ++ib) {
    const int l = nearest_int(id * scales[ib]);
    ls[ib] = l < -32 ? -32 : l > 31 ? 31 : l;
  }
  return d;
}

}  // namespace ggml_search

// ---------------------------------------------------------------- fast quantizers

namespace {

namespace gs = ggml_search;
constexpr int QK = QK_LEGACY;


// ggml's truncating conversion (uint8_t)(t) for t = scaled value + offset, clamped to
// [0, hi] first (the same result wherever ggml's is defined; NaN cannot occur).
inline int trunc_code(float t, float hi) {
  t = t > 0.0f ? t : 0.0f;
  t = t < hi ? t : hi;
  return static_cast<int>(t);
}

void pack_high_bits(const int* q, uint8_t* qh) {
  uint32_t h = 0;
  for (int j = 0; j < QK; ++j) h |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
  for (int b = 0; b < 4; ++b) qh[b] = static_cast<uint8_t>(h >> (8 * b));
}

// quantize_row_q4_0_ref / q5_0_ref for one block: d = signed absmax / -nmax.
uint16_t sym_ref_block(const float* x, int nmax, int* q) {
  const float d = gs::signed_absmax(x, QK) / static_cast<float>(-nmax);
  const float id = finite_inverse(d);
  const float off = static_cast<float>(nmax) + 0.5f, hi = static_cast<float>(2 * nmax - 1);
  for (int j = 0; j < QK; ++j) q[j] = trunc_code(x[j] * id + off, hi);
  return to_half(d);
}

// quantize_row_q4_1_ref / q5_1_ref for one block: d = (max - min) / nmax, m = min.
void asym_ref_block(const float* x, int nmax, int* q, uint16_t* hd, uint16_t* hm) {
  float min = FLT_MAX, max = -FLT_MAX;
  for (int j = 0; j < QK; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
  const float d = (max - min) / static_cast<float>(nmax);
  const float id = finite_inverse(d);
  for (int j = 0; j < QK; ++j) q[j] = trunc_code((x[j] - min) * id + 0.5f, static_cast<float>(nmax));
  *hd = to_half(d);
  *hm = to_half(min);
}

// Q4_0 / Q5_0: the reference rounding, or make_qx_quants with imatrix weights.
template <class Block>
void sym_row(const float* x, Block* out, int64_t n, const float* importance, int nmax) {
  const float sigma2 = importance ? gs::row_sigma2(x, n) : 0.0f;
  float w[QK];
  int q[QK];
  int8_t L[QK];
  for (int64_t i = 0; i < n / QK; ++i) {
    const float* xb = x + i * QK;
    if (importance && gs::imatrix_weights(xb, importance + i * QK, sigma2, QK, w)) {
      out[i].d = to_half(gs::make_qx(xb, w, nmax, L));
      for (int j = 0; j < QK; ++j) q[j] = L[j];
    } else {
      out[i].d = sym_ref_block(xb, nmax, q);
    }
    if constexpr (requires { out[i].qh; }) pack_high_bits(q, out[i].qh);
    pack_nibbles32(q, out[i].qs);
  }
}

// Q4_1 / Q5_1: the reference rounding, or make_qkx3_quants with imatrix weights.
template <class Block>
void asym_row(const float* x, Block* out, int64_t n, const float* importance, int nmax) {
  const float sigma2 = importance ? gs::row_sigma2(x, n) : 0.0f;
  float w[QK];
  int q[QK];
  uint8_t L[QK];
  for (int64_t i = 0; i < n / QK; ++i) {
    const float* xb = x + i * QK;
    if (importance && gs::imatrix_weights(xb, importance + i * QK, sigma2, QK, w)) {
      float m;
      out[i].d = to_half(gs::make_qkx3(xb, w, nmax, L, &m));
      out[i].m = to_half(m);
      for (int j = 0; j < QK; ++j) q[j] = L[j];
    } else {
      asym_ref_block(xb, nmax, q, &out[i].d, &out[i].m);
    }
    if constexpr (requires { out[i].qh; }) pack_high_bits(q, out[i].qh);
    pack_nibbles32(q, out[i].qs);
  }
}

void iq4_codes(const float* x, float id, uint8_t* L) {
  for (int j = 0; j < QK; ++j) L[j] = static_cast<uint8_t>(gs::iq4_index(id * x[j]));
}

}  // namespace

void quantize_row_q4_0_fast__scalar(const float* x, void* y, int64_t n, const float* importance) {
  sym_row(x, static_cast<block_q4_0*>(y), n, importance, 8);
}

void quantize_row_q5_0_fast__scalar(const float* x, void* y, int64_t n, const float* importance) {
  sym_row(x, static_cast<block_q5_0*>(y), n, importance, 16);
}

void quantize_row_q4_1_fast__scalar(const float* x, void* y, int64_t n, const float* importance) {
  asym_row(x, static_cast<block_q4_1*>(y), n, importance, 15);
}

void quantize_row_q5_1_fast__scalar(const float* x, void* y, int64_t n, const float* importance) {
  asym_row(x, static_cast<block_q5_1*>(y), n, importance, 31);
}

// quantize_row_q8_0_ref: d = absmax / 127, codes roundf(x / d); ggml ignores importance.
void quantize_row_q8_0_fast__scalar(const float* x, void* y, int64_t n, const float*) {
  auto* out = static_cast<block_q8_0*>(y);
  for (int64_t i = 0; i < n / QK; ++i) {
    const float* xb = x + i * QK;
    float amax = 0.0f;
    for (int j = 0; j < QK; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f;
    const float id = finite_inverse(d);
    out[i].d = to_half(d);
    for (int j = 0; j < QK; ++j) {
      float t = xb[j] * id;
      t = t < 127.0f ? t : 127.0f;  // only an overflowing id reaches beyond
      t = t > -127.0f ? t : -127.0f;
      out[i].qs[j] = static_cast<int8_t>(std::round(t));
    }
  }
}

void quantize_row_iq4_nl_fast__scalar(const float* x, void* y, int64_t n, const float* importance) {
  auto* out = static_cast<block_iq4_nl*>(y);
  float w[QK];
  uint8_t L[QK];
  for (int64_t i = 0; i < n / QK; ++i) {
    const float* xb = x + i * QK;
    gs::iq4_weights(xb, importance ? importance + i * QK : nullptr, QK, w);
    const float d = gs::iq4_scale(xb, w);
    out[i].d = to_half(d);
    iq4_codes(xb, d != 0.0f ? 1.0f / d : 0.0f, L);
    pack_nibbles32(L, out[i].qs);
  }
}

void quantize_row_iq4_xs_fast__scalar(const float* x, void* y, int64_t n, const float* importance) {
  auto* out = static_cast<block_iq4_xs*>(y);
  constexpr int kSub = QK_K / QK;
  float w[QK_K], scales[kSub];
  for (int64_t ibl = 0; ibl < n / QK_K; ++ibl) {
    const float* xs = x + ibl * QK_K;
    gs::iq4_weights(xs, importance ? importance + ibl * QK_K : nullptr, QK_K, w);
    for (int ib = 0; ib < kSub; ++ib) scales[ib] = gs::iq4_scale(xs + ib * QK, w + ib * QK);
    gs::write_iq4_xs_block(xs, scales, out[ibl], [](const float* xb, float id, uint8_t* qs) {
      uint8_t L[QK];
      iq4_codes(xb, id, L);
      pack_nibbles32(L, qs);
    });
  }
}

}  // namespace lowbit::kernels
