// Per-element codes and per-sub-block maps of every GGML block format. Bit
// positions follow the dequantizers in legacy.cpp, kquants.cpp, kquants_low.cpp and
// iq4.cpp (themselves ggml's layouts); stored codes carry the format's bias
// (Q4_0 stores level + 8, Q3_K level + 4, ...), levels here are the signed values
// the dequantizer multiplies.
#include "cpu/reference/block_codec.hpp"

#include <algorithm>

#include "common/kquant_scales.hpp"
#include "common/nibbles.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

// Element j of a 32-element group packed two per byte: j < 16 in the low nibble of
// qs[j], j >= 16 in the high nibble of qs[j - 16] (Q4_0, Q4_1, Q5_*, IQ4_*).
int get_nibble32(const uint8_t* qs, int j) { return nibble32(qs, j); }
void set_nibble32(uint8_t* qs, int j, int v) {
  if (j < 16)
    qs[j] = static_cast<uint8_t>((qs[j] & 0xf0) | (v & 0x0f));
  else
    qs[j - 16] = static_cast<uint8_t>((qs[j - 16] & 0x0f) | (v & 0x0f) << 4);
}

// Bit j of the little-endian u32 in qh[4] (Q5_0 / Q5_1 fifth bits).
int get_bit32(const uint8_t* qh, int j) { return (qh[j / 8] >> (j % 8)) & 1; }
void set_bit(uint8_t* bytes, int byte, int bit, int v) {
  bytes[byte] = static_cast<uint8_t>((bytes[byte] & ~(1u << bit)) | (static_cast<unsigned>(v & 1) << bit));
}

// Q2_K / Q3_K low two bits: element e in bits 2*((e%128)/32) of qs[32*(e/128) + e%32].
int get_low2(const uint8_t* qs, int e) { return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3; }
void set_low2(uint8_t* qs, int e, int v) {
  const int i = 32 * (e / 128) + e % 32, s = 2 * ((e % 128) / 32);
  qs[i] = static_cast<uint8_t>((qs[i] & ~(3u << s)) | (static_cast<unsigned>(v & 3) << s));
}

// Q4_K / Q5_K low four bits: sub-block j = e/32 pairs with j^1 in the bytes
// qs[32*(j/2) + e%32], even j in the low nibble, odd j in the high nibble.
int get_nibble_k(const uint8_t* qs, int e) {
  const uint8_t b = qs[32 * (e / 64) + e % 32];
  return (e / 32) % 2 == 0 ? b & 0x0f : b >> 4;
}
void set_nibble_k(uint8_t* qs, int e, int v) {
  uint8_t& b = qs[32 * (e / 64) + e % 32];
  if ((e / 32) % 2 == 0)
    b = static_cast<uint8_t>((b & 0xf0) | (v & 0x0f));
  else
    b = static_cast<uint8_t>((b & 0x0f) | (v & 0x0f) << 4);
}

// Q6_K: element e = 128h + 32k + l keeps its low four bits in ql[64h + l + 32(k%2)]
// (low nibble for k < 2, high nibble otherwise) and its high two bits at bit 2k of qh[32h + l].
int get_q6(const uint8_t* ql, const uint8_t* qh, int e) {
  const int h = e / 128, k = (e % 128) / 32, l = e % 32;
  const uint8_t lb = ql[64 * h + l + 32 * (k % 2)];
  const int low = k < 2 ? lb & 0x0f : lb >> 4;
  return low | ((qh[32 * h + l] >> (2 * k)) & 3) << 4;
}
void set_q6(uint8_t* ql, uint8_t* qh, int e, int q) {
  const int h = e / 128, k = (e % 128) / 32, l = e % 32;
  uint8_t& lb = ql[64 * h + l + 32 * (k % 2)];
  if (k < 2)
    lb = static_cast<uint8_t>((lb & 0xf0) | (q & 0x0f));
  else
    lb = static_cast<uint8_t>((lb & 0x0f) | (q & 0x0f) << 4);
  uint8_t& hb = qh[32 * h + l];
  hb = static_cast<uint8_t>((hb & ~(3u << (2 * k))) | (static_cast<unsigned>((q >> 4) & 3) << (2 * k)));
}

template <class B>
const B& as(const void* p) {
  return *static_cast<const B*>(p);
}
template <class B>
B& as(void* p) {
  return *static_cast<B*>(p);
}

// ---------------------------------------------------------------- legacy 32-element blocks

template <class B>
SubBlockMap map_d(const void* p, int) {
  return {fp16_to_fp32(as<B>(p).d), 0.0f};
}
template <class B>
SubBlockMap map_dm(const void* p, int) {
  return {fp16_to_fp32(as<B>(p).d), fp16_to_fp32(as<B>(p).m)};
}

// Four-bit formats: bias 8 for Q4_0, 0 for Q4_1 and the IQ4_NL indices.
template <class B, int Bias>
int get4(const void* p, int e) {
  return get_nibble32(as<B>(p).qs, e) - Bias;
}
template <class B, int Bias>
void set4(void* p, int e, int level) {
  set_nibble32(as<B>(p).qs, e, level + Bias);
}

// Five-bit formats: bias 16 for Q5_0, 0 for Q5_1.
template <class B, int Bias>
int get5(const void* p, int e) {
  const B& b = as<B>(p);
  return (get_nibble32(b.qs, e) | get_bit32(b.qh, e) << 4) - Bias;
}
template <class B, int Bias>
void set5(void* p, int e, int level) {
  B& b = as<B>(p);
  const int q = level + Bias;
  set_nibble32(b.qs, e, q);
  set_bit(b.qh, e / 8, e % 8, q >> 4);
}

template <class B>
int get8(const void* p, int e) {
  return as<B>(p).qs[e];
}
template <class B>
void set8(void* p, int e, int level) {
  as<B>(p).qs[e] = static_cast<int8_t>(level);
}

// ggml's s = d * sum(qs), from the stored d, saturated like the quantizer's.
void finish_q8_1(void* p) {
  auto& b = as<block_q8_1>(p);
  int sum = 0;
  for (int8_t q : b.qs) sum += q;
  b.s = fp32_to_fp16(std::clamp(static_cast<float>(sum) * fp16_to_fp32(b.d), -65504.0f, 65504.0f));
}

// ---------------------------------------------------------------- K-quants

SubBlockMap map_q2_K(const void* p, int j) {
  const auto& b = as<block_q2_K>(p);
  const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
  const float dl = d * static_cast<float>(b.scales[j] & 0xF);
  const float ml = dmin * static_cast<float>(b.scales[j] >> 4);
  return {dl, -ml};
}
int get_q2_K(const void* p, int e) { return get_low2(as<block_q2_K>(p).qs, e); }
void set_q2_K(void* p, int e, int level) { set_low2(as<block_q2_K>(p).qs, e, level); }

SubBlockMap map_q3_K(const void* p, int j) {
  const auto& b = as<block_q3_K>(p);
  const int lo = (b.scales[j % 8] >> (j < 8 ? 0 : 4)) & 0xF;
  const int hi = (b.scales[8 + j % 4] >> (2 * (j / 4))) & 3;
  return {fp16_to_fp32(b.d) * static_cast<float>((lo | hi << 4) - 32), 0.0f};
}
// Stored code level + 4: two low bits in qs, the third in hmask[e%32] bit e/32.
int get_q3_K(const void* p, int e) {
  const auto& b = as<block_q3_K>(p);
  return (get_low2(b.qs, e) | ((b.hmask[e % 32] >> (e / 32)) & 1) << 2) - 4;
}
void set_q3_K(void* p, int e, int level) {
  auto& b = as<block_q3_K>(p);
  const int q = level + 4;
  set_low2(b.qs, e, q);
  set_bit(b.hmask, e % 32, e / 32, q >> 2);
}

template <class B>
SubBlockMap map_k4(const void* p, int j) {
  const B& b = as<B>(p);
  uint8_t sc, m;
  get_scale_min_k4(j, b.scales, sc, m);
  return {fp16_to_fp32(b.d) * sc, -(fp16_to_fp32(b.dmin) * m)};
}
int get_q4_K(const void* p, int e) { return get_nibble_k(as<block_q4_K>(p).qs, e); }
void set_q4_K(void* p, int e, int level) { set_nibble_k(as<block_q4_K>(p).qs, e, level); }
int get_q5_K(const void* p, int e) {
  const auto& b = as<block_q5_K>(p);
  return get_nibble_k(b.qs, e) | ((b.qh[e % 32] >> (e / 32)) & 1) << 4;
}
void set_q5_K(void* p, int e, int level) {
  auto& b = as<block_q5_K>(p);
  set_nibble_k(b.qs, e, level);
  set_bit(b.qh, e % 32, e / 32, level >> 4);
}

SubBlockMap map_q6_K(const void* p, int j) {
  const auto& b = as<block_q6_K>(p);
  return {fp16_to_fp32(b.d) * b.scales[j], 0.0f};
}
int get_q6_K(const void* p, int e) {
  const auto& b = as<block_q6_K>(p);
  return get_q6(b.ql, b.qh, e) - 32;
}
void set_q6_K(void* p, int e, int level) {
  auto& b = as<block_q6_K>(p);
  set_q6(b.ql, b.qh, e, level + 32);
}

SubBlockMap map_q8_K(const void* p, int) { return {as<block_q8_K>(p).d, 0.0f}; }
void finish_q8_K(void* p) {
  auto& b = as<block_q8_K>(p);
  for (int k = 0; k < QK_K / 16; ++k) {
    int sum = 0;
    for (int i = 0; i < 16; ++i) sum += b.qs[16 * k + i];
    b.bsums[k] = static_cast<int16_t>(sum);
  }
}

// ---------------------------------------------------------------- IQ4_XS

SubBlockMap map_iq4_xs(const void* p, int ib) {
  const auto& b = as<block_iq4_xs>(p);
  const int ls = ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0f) | (((b.scales_h >> (2 * ib)) & 3) << 4);
  return {fp16_to_fp32(b.d) * static_cast<float>(ls - 32), 0.0f};
}
int get_iq4_xs(const void* p, int e) { return get_nibble32(as<block_iq4_xs>(p).qs + 16 * (e / 32), e % 32); }
void set_iq4_xs(void* p, int e, int level) { set_nibble32(as<block_iq4_xs>(p).qs + 16 * (e / 32), e % 32, level); }

// Q8 levels stop at -127, as the quantizers' do: int8 dot-product kernels rely on
// |q| fitting in int8.
constexpr BlockCodec kCodecs[] = {
    {Format::Q4_0, 32, 18, 32, -8, 7, nullptr, false, map_d<block_q4_0>, get4<block_q4_0, 8>, set4<block_q4_0, 8>, nullptr},
    {Format::Q4_1, 32, 20, 32, 0, 15, nullptr, true, map_dm<block_q4_1>, get4<block_q4_1, 0>, set4<block_q4_1, 0>, nullptr},
    {Format::Q5_0, 32, 22, 32, -16, 15, nullptr, false, map_d<block_q5_0>, get5<block_q5_0, 16>, set5<block_q5_0, 16>, nullptr},
    {Format::Q5_1, 32, 24, 32, 0, 31, nullptr, true, map_dm<block_q5_1>, get5<block_q5_1, 0>, set5<block_q5_1, 0>, nullptr},
    {Format::Q8_0, 32, 34, 32, -127, 127, nullptr, false, map_d<block_q8_0>, get8<block_q8_0>, set8<block_q8_0>, nullptr},
    {Format::Q8_1, 32, 36, 32, -127, 127, nullptr, false, map_d<block_q8_1>, get8<block_q8_1>, set8<block_q8_1>, finish_q8_1},
    {Format::Q2_K, 256, 84, 16, 0, 3, nullptr, true, map_q2_K, get_q2_K, set_q2_K, nullptr},
    {Format::Q3_K, 256, 110, 16, -4, 3, nullptr, false, map_q3_K, get_q3_K, set_q3_K, nullptr},
    {Format::Q4_K, 256, 144, 32, 0, 15, nullptr, true, map_k4<block_q4_K>, get_q4_K, set_q4_K, nullptr},
    {Format::Q5_K, 256, 176, 32, 0, 31, nullptr, true, map_k4<block_q5_K>, get_q5_K, set_q5_K, nullptr},
    {Format::Q6_K, 256, 210, 16, -32, 31, nullptr, false, map_q6_K, get_q6_K, set_q6_K, nullptr},
    {Format::Q8_K, 256, 292, 256, -127, 127, nullptr, false, map_q8_K, get8<block_q8_K>, set8<block_q8_K>, finish_q8_K},
    {Format::IQ4_NL, 32, 18, 32, 0, 15, kIq4nlValues, false, map_d<block_iq4_nl>, get4<block_iq4_nl, 0>,
     set4<block_iq4_nl, 0>, nullptr},
    {Format::IQ4_XS, 256, 136, 32, 0, 15, kIq4nlValues, false, map_iq4_xs, get_iq4_xs, set_iq4_xs, nullptr},
};

}  // namespace

const BlockCodec* block_codec(Format f) {
  for (const BlockCodec& c : kCodecs)
    if (c.format == f) return &c;
  return nullptr;
}

}  // namespace lowbit::kernels
