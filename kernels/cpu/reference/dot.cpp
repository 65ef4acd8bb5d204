// Scalar dot products of weight rows with activation rows: the ground truth for the
// dot family. Each block's integer sum is exact (int32: at most 256 products of
// |q| <= 127 codes times small scales), and the float terms follow ggml's vec_dot
// formulas, accumulated in block order:
//   Q4_0/Q5_0/Q8_0/IQ4_NL  sum += (d_w * d_a) * isum
//   Q4_1/Q5_1              sum += (d_w * d_a) * isum + m_w * s_a
//   Q2_K/Q4_K/Q5_K         sum += (d_a * d_w) * isum - (d_a * dmin_w) * sum_j m_j * bsum_j
//   Q3_K/Q6_K/IQ4_XS       sum += (d_a * d_w) * isum
// where isum weights each sub-block's code sum by its integer scale.
#include <cstddef>
#include <cstring>

#include "common/kquant_scales.hpp"
#include "common/nibbles.hpp"
#include "lists/declarations.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

// sum_j q[j] * a[j] over 32 codes.
int dot32(const int* q, const int8_t* a) {
  int s = 0;
  for (int j = 0; j < 32; ++j) s += q[j] * a[j];
  return s;
}

// The 32 codes of a Q4_0 / Q4_1 / IQ4_NL block (0..15) in element order.
void nibble_codes(const uint8_t* qs, int* q) {
  for (int j = 0; j < 32; ++j) q[j] = nibble32(qs, j);
}

// Adds Q5's fifth bits (bit j of the little-endian u32 qh) to the nibble codes.
void add_fifth_bits(const uint8_t* qh_bytes, int* q) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  for (int j = 0; j < 32; ++j) q[j] |= static_cast<int>((qh >> j) & 1) << 4;
}

// sum_j scale[j] * (codes of sub-block j . activations), over 256 elements in
// sub-blocks of `sub` elements.
int scaled_isum(const int* q, const int* scale, const int8_t* a, int sub) {
  int isum = 0;
  for (int j = 0; j < QK_K / sub; ++j) {
    int s = 0;
    for (int l = 0; l < sub; ++l) s += q[j * sub + l] * a[j * sub + l];
    isum += scale[j] * s;
  }
  return isum;
}

// sum_j m[j] * (sum of the activation codes of sub-block j), from Q8_K's 16-element
// bsums.
int min_term(const int* m, const block_q8_K& a, int sub) {
  int s = 0;
  for (int j = 0; j < QK_K / sub; ++j) {
    int bsum = 0;
    for (int k = 0; k < sub / 16; ++k) bsum += a.bsums[j * (sub / 16) + k];
    s += m[j] * bsum;
  }
  return s;
}

// Codes of the 2-bit planes shared by Q2_K and Q3_K: element e sits in bits
// 2*((e%128)/32) of qs[32*(e/128) + e%32].
int two_bit_code(const uint8_t* qs, int e) { return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3; }

}  // namespace

float dot_q4_0_q8_0__scalar(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q4_0*>(vw);
  const auto* a = static_cast<const block_q8_0*>(va);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_LEGACY; ++i) {
    int q[32];
    nibble_codes(w[i].qs, q);
    for (int& c : q) c -= 8;
    sum += (fp16_to_fp32(w[i].d) * fp16_to_fp32(a[i].d)) * static_cast<float>(dot32(q, a[i].qs));
  }
  return sum;
}

float dot_q4_1_q8_1__scalar(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q4_1*>(vw);
  const auto* a = static_cast<const block_q8_1*>(va);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_LEGACY; ++i) {
    int q[32];
    nibble_codes(w[i].qs, q);
    sum += (fp16_to_fp32(w[i].d) * fp16_to_fp32(a[i].d)) * static_cast<float>(dot32(q, a[i].qs)) +
           fp16_to_fp32(w[i].m) * fp16_to_fp32(a[i].s);
  }
  return sum;
}

float dot_q5_0_q8_0__scalar(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q5_0*>(vw);
  const auto* a = static_cast<const block_q8_0*>(va);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_LEGACY; ++i) {
    int q[32];
    nibble_codes(w[i].qs, q);
    add_fifth_bits(w[i].qh, q);
    for (int& c : q) c -= 16;
    sum += (fp16_to_fp32(w[i].d) * fp16_to_fp32(a[i].d)) * static_cast<float>(dot32(q, a[i].qs));
  }
  return sum;
}

float dot_q5_1_q8_1__scalar(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q5_1*>(vw);
  const auto* a = static_cast<const block_q8_1*>(va);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_LEGACY; ++i) {
    int q[32];
    nibble_codes(w[i].qs, q);
    add_fifth_bits(w[i].qh, q);
    sum += (fp16_to_fp32(w[i].d) * fp16_to_fp32(a[i].d)) * static_cast<float>(dot32(q, a[i].qs)) +
           fp16_to_fp32(w[i].m) * fp16_to_fp32(a[i].s);
  }
  return sum;
}

float dot_q8_0_q8_0__scalar(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q8_0*>(vw);
  const auto* a = static_cast<const block_q8_0*>(va);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_LEGACY; ++i) {
    int q[32];
    for (int j = 0; j < 32; ++j) q[j] = w[i].qs[j];
    sum += (fp16_to_fp32(w[i].d) * fp16_to_fp32(a[i].d)) * static_cast<float>(dot32(q, a[i].qs));
  }
  return sum;
}

float dot_iq4_nl_q8_0__scalar(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_iq4_nl*>(vw);
  const auto* a = static_cast<const block_q8_0*>(va);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_LEGACY; ++i) {
    int q[32];
    nibble_codes(w[i].qs, q);
    for (int& c : q) c = kIq4nlValues[c];
    sum += (fp16_to_fp32(w[i].d) * fp16_to_fp32(a[i].d)) * static_cast<float>(dot32(q, a[i].qs));
  }
  return sum;
}

float dot_q2_K_q8_K__scalar(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q2_K*>(vw);
  const auto* a = static_cast<const block_q8_K*>(va);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int q[QK_K], sc[16], m[16];
    for (int e = 0; e < QK_K; ++e) q[e] = two_bit_code(w[i].qs, e);
    for (int j = 0; j < 16; ++j) {
      sc[j] = w[i].scales[j] & 0xF;
      m[j] = w[i].scales[j] >> 4;
    }
    const float dall = a[i].d * fp16_to_fp32(w[i].d), dmin = a[i].d * fp16_to_fp32(w[i].dmin);
    sum += dall * static_cast<float>(scaled_isum(q, sc, a[i].qs, 16)) -
           dmin * static_cast<float>(min_term(m, a[i], 16));
  }
  return sum;
}

float dot_q3_K_q8_K__scalar(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q3_K*>(vw);
  const auto* a = static_cast<const block_q8_K*>(va);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int q[QK_K], sc[16];
    for (int e = 0; e < QK_K; ++e)
      q[e] = two_bit_code(w[i].qs, e) - (((w[i].hmask[e % 32] >> (e / 32)) & 1) ? 0 : 4);
    for (int j = 0; j < 16; ++j) {
      const int lo = (w[i].scales[j % 8] >> (j < 8 ? 0 : 4)) & 0xF;
      const int hi = (w[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3;
      sc[j] = (lo | hi << 4) - 32;
    }
    sum += (a[i].d * fp16_to_fp32(w[i].d)) * static_cast<float>(scaled_isum(q, sc, a[i].qs, 16));
  }
  return sum;
}

namespace {

// Q4_K and Q5_K: eight 32-element sub-blocks, 6-bit scales and mins.
template <class Block>
float dot_k4_family(const Block* w, const block_q8_K* a, int64_t blocks, bool fifth_bit) {
  float sum = 0;
  for (int64_t i = 0; i < blocks; ++i) {
    int q[QK_K], sc[8], m[8];
    for (int j = 0; j < 8; ++j) {
      uint8_t s, mm;
      get_scale_min_k4(j, w[i].scales, s, mm);
      sc[j] = s;
      m[j] = mm;
      // Sub-blocks 2k and 2k+1 share qs[32k..32k+31]: low nibbles, then high ones.
      for (int l = 0; l < 32; ++l) q[32 * j + l] = (w[i].qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0xF;
    }
    if constexpr (sizeof(Block) == sizeof(block_q5_K)) {
      if (fifth_bit)
        for (int j = 0; j < 8; ++j)
          for (int l = 0; l < 32; ++l) q[32 * j + l] |= ((w[i].qh[l] >> j) & 1) << 4;
    }
    const float dall = a[i].d * fp16_to_fp32(w[i].d), dmin = a[i].d * fp16_to_fp32(w[i].dmin);
    sum += dall * static_cast<float>(scaled_isum(q, sc, a[i].qs, 32)) -
           dmin * static_cast<float>(min_term(m, a[i], 32));
  }
  return sum;
}

}  // namespace

float dot_q4_K_q8_K__scalar(const void* vw, const void* va, int64_t n) {
  return dot_k4_family(static_cast<const block_q4_K*>(vw), static_cast<const block_q8_K*>(va), n / QK_K, false);
}

float dot_q5_K_q8_K__scalar(const void* vw, const void* va, int64_t n) {
  return dot_k4_family(static_cast<const block_q5_K*>(vw), static_cast<const block_q8_K*>(va), n / QK_K, true);
}

float dot_q6_K_q8_K__scalar(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q6_K*>(vw);
  const auto* a = static_cast<const block_q8_K*>(va);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int q[QK_K], sc[16];
    // Element 128h + 32k + l: low nibble of ql[64h + l + 32(k%2)] (high nibble for
    // k >= 2), two high bits at 2k of qh[32h + l].
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 4; ++k)
        for (int l = 0; l < 32; ++l) {
          const int low = (w[i].ql[64 * h + l + 32 * (k % 2)] >> (4 * (k / 2))) & 0xF;
          const int high = (w[i].qh[32 * h + l] >> (2 * k)) & 3;
          q[128 * h + 32 * k + l] = (low | high << 4) - 32;
        }
    for (int j = 0; j < 16; ++j) sc[j] = w[i].scales[j];
    sum += (a[i].d * fp16_to_fp32(w[i].d)) * static_cast<float>(scaled_isum(q, sc, a[i].qs, 16));
  }
  return sum;
}

float dot_iq4_xs_q8_K__scalar(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_iq4_xs*>(vw);
  const auto* a = static_cast<const block_q8_K*>(va);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int q[QK_K], sc[8];
    for (int j = 0; j < 8; ++j) {
      sc[j] = (((w[i].scales_l[j / 2] >> (4 * (j % 2))) & 0xF) | (((w[i].scales_h >> (2 * j)) & 3) << 4)) - 32;
      for (int l = 0; l < 32; ++l) q[32 * j + l] = kIq4nlValues[nibble32(w[i].qs + 16 * j, l)];
    }
    sum += (a[i].d * fp16_to_fp32(w[i].d)) * static_cast<float>(scaled_isum(q, sc, a[i].qs, 32));
  }
  return sum;
}

// The float formats accumulate in double: the reference should carry no summation
// error of its own.
float dot_f32_f32__scalar(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const float*>(vw);
  const auto* a = static_cast<const float*>(va);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += double(w[i]) * a[i];
  return static_cast<float>(sum);
}

float dot_f16_f32__scalar(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const uint16_t*>(vw);
  const auto* a = static_cast<const float*>(va);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += double(fp16_to_fp32(w[i])) * a[i];
  return static_cast<float>(sum);
}

float dot_bf16_f32__scalar(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const uint16_t*>(vw);
  const auto* a = static_cast<const float*>(va);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += double(bf16_to_fp32(w[i])) * a[i];
  return static_cast<float>(sum);
}

// ---------------------------------------------------------------- multi-row references
// The multi-row family's definition: the scalar dot once per row.
namespace {
template <DotFn kDot>
void rows_by_dot(const void* w, size_t row_bytes, const void* a, int64_t n, int64_t rows, float* y) {
  for (int64_t r = 0; r < rows; ++r) y[r] = kDot(static_cast<const std::byte*>(w) + r * row_bytes, a, n);
}
}  // namespace

void dot_rows_q4_0_q8_0__scalar(const void* w, size_t rb, const void* a, int64_t n, int64_t rows, float* y) {
  rows_by_dot<dot_q4_0_q8_0__scalar>(w, rb, a, n, rows, y);
}
void dot_rows_q4_1_q8_1__scalar(const void* w, size_t rb, const void* a, int64_t n, int64_t rows, float* y) {
  rows_by_dot<dot_q4_1_q8_1__scalar>(w, rb, a, n, rows, y);
}
void dot_rows_q5_0_q8_0__scalar(const void* w, size_t rb, const void* a, int64_t n, int64_t rows, float* y) {
  rows_by_dot<dot_q5_0_q8_0__scalar>(w, rb, a, n, rows, y);
}
void dot_rows_q5_1_q8_1__scalar(const void* w, size_t rb, const void* a, int64_t n, int64_t rows, float* y) {
  rows_by_dot<dot_q5_1_q8_1__scalar>(w, rb, a, n, rows, y);
}
void dot_rows_q8_0_q8_0__scalar(const void* w, size_t rb, const void* a, int64_t n, int64_t rows, float* y) {
  rows_by_dot<dot_q8_0_q8_0__scalar>(w, rb, a, n, rows, y);
}
void dot_rows_iq4_nl_q8_0__scalar(const void* w, size_t rb, const void* a, int64_t n, int64_t rows, float* y) {
  rows_by_dot<dot_iq4_nl_q8_0__scalar>(w, rb, a, n, rows, y);
}

}  // namespace lowbit::kernels
