// AVX2 packed GEMM, for x86 CPUs without VNNI. Without dpbusd the byte products
// have to stay exact another way, and which way depends on the panel's levels (one
// min/max scan per call):
//  - Narrow panels, whose levels span at most 16 values (Q4_0, Q4_1, Q4_K) or 32
//    (Q5_0, Q5_1, Q5_K): the levels minus the panel's smallest, u in 0..15 or 0..31,
//    are unsigned bytes and the activation codes (q - 128) signed ones, so vpmaddubsw
//    multiplies 32 of them into 16-bit pair sums (at most 2 * 31 * 128) that eight or
//    four column groups add in int16 before one vpmaddwd widens them; the smallest
//    level times each activation block's code sum puts the offset back.
//  - Other panels (Q8_0, IQ4_NL, IQ4_XS, Q3_K): maddubs would saturate (a stored
//    activation byte reaches 255, a level -128, and a pair of such products overflows
//    int16), so the levels are widened to int16 and multiplied by the activation codes
//    (also int16) with madd, whose pair sums fit int32. A panel is done in two halves
//    of eight rows, each half's four-column groups widened once and multiplied by up
//    to four activation rows.
// Either way each block's integer sum is exact, and after each block the scalar
// reference's fused multiply-adds run per lane in its order (the offset's only where
// it is not zero), so the result equals packed_gemm__scalar bit for bit.
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

// The activation codes q - 128 as int8, [row][block][32], and per block `lo` times
// the block's code sum: the narrow path's operands.
void signed_activations(const PackedActivationBlock* acts, int64_t count, int lo, int8_t* out, int32_t* correction) {
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int64_t i = 0; i < count; ++i) {
    const __m256i a = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(acts[i].q)), flip);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32 * i), a);
    const __m256i sums = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), a), _mm256_set1_epi16(1));
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(sums), _mm256_extracti128_si256(sums, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
    correction[i] = lo * _mm_cvtsi128_si32(t);
  }
}

// The smallest and largest level of the panel's `blocks` blocks (rows past the
// matrix's end hold zeros and count too: they only widen the range).
void level_range(const PackedPanelBlock* panel, int64_t blocks, int& lo, int& hi) {
  __m256i mn = _mm256_set1_epi8(127), mx = _mm256_set1_epi8(-128);
  for (int64_t k = 0; k < blocks; ++k) {
    const auto* c = reinterpret_cast<const __m256i*>(&panel[k].codes[0][0][0]);
    for (int i = 0; i < static_cast<int>(sizeof panel[k].codes / 32); ++i) {
      const __m256i v = _mm256_loadu_si256(c + i);
      mn = _mm256_min_epi8(mn, v);
      mx = _mm256_max_epi8(mx, v);
    }
  }
  alignas(32) int8_t lows[32], highs[32];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lows), mn);
  _mm256_store_si256(reinterpret_cast<__m256i*>(highs), mx);
  lo = 127;
  hi = -128;
  for (int i = 0; i < 32; ++i) {
    lo = lows[i] < lo ? lows[i] : lo;
    hi = highs[i] > hi ? highs[i] : hi;
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

// A block's float terms for rows [8 * half, 8 * half + 8): the scalar reference's two
// fused multiply-adds per lane, applied to one activation row's exact integer sums.
struct BlockTerms {
  __m256 scale, offset, has_offset;
  bool any_offset;
  BlockTerms(const PackedPanelBlock& p, int half)
      : scale(_mm256_loadu_ps(p.scale + kHalfRows * half)), offset(_mm256_loadu_ps(p.offset + kHalfRows * half)) {
    has_offset = _mm256_cmp_ps(offset, _mm256_setzero_ps(), _CMP_NEQ_UQ);
    any_offset = _mm256_movemask_ps(has_offset) != 0;
  }
  // isum: the rows' integer sums, in row order.
  void apply(__m256& acc, const PackedActivationBlock& a, __m256i isum) const {
    acc = _mm256_fmadd_ps(_mm256_mul_ps(scale, _mm256_set1_ps(a.d)), _mm256_cvtepi32_ps(isum), acc);
    // A zero offset's fma is skipped, as in the reference: fma(0, dsum, -0) is +0.
    if (any_offset) acc = _mm256_blendv_ps(acc, _mm256_fmadd_ps(offset, _mm256_set1_ps(a.dsum), acc), has_offset);
  }
};

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
    const BlockTerms terms(p, half);
    // hadd gives rows [0 1 4 5 | 2 3 6 7]; the qword permute puts them in order.
    for (int b = 0; b < kBatch; ++b)
      terms.apply(acc[b], acts[b * blocks + k], _mm256_permute4x64_epi64(_mm256_hadd_epi32(s_lo[b], s_hi[b]), 0xD8));
  }
  for (int b = 0; b < kBatch; ++b) store_rows(y + b * ldy + kHalfRows * half, acc[b], rows - kHalfRows * half);
}

// The narrow path: u = level - lo (0..15, or 0..31) by the signed activation codes
// with vpmaddubsw, kGroups column groups summed in int16 before one vpmaddwd widens
// them (8 groups for 4-bit ranges: at most 8 * 2 * 15 * 128 = 30720; 4 for 5-bit
// ones: 4 * 2 * 31 * 128 = 31744), both halves of the panel at once (one broadcast of
// each activation group serves sixteen rows).
template <int kBatch, int kGroups>
void panel_narrow(const PackedPanelBlock* panel, const PackedActivationBlock* acts, const int8_t* codes,
                  const int32_t* correction, int64_t blocks, int lo, float* y, int64_t ldy, int rows) {
  const __m256i lo_v = _mm256_set1_epi8(static_cast<char>(lo)), ones = _mm256_set1_epi16(1);
  __m256 acc[kBatch][2];
  for (int b = 0; b < kBatch; ++b) acc[b][0] = acc[b][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < blocks; ++k) {
    const PackedPanelBlock& p = panel[k];
    // 16-bit lanes: rows 0..7 (s[b][0]) and 8..15 (s[b][1]), two column pairs each.
    __m256i s[kBatch][2];
    [[maybe_unused]] __m256i sum32[kBatch][2];  // 5-bit ranges: the int16 sums widened every kGroups groups
    for (int b = 0; b < kBatch; ++b) s[b][0] = s[b][1] = _mm256_setzero_si256();
    if constexpr (kGroups < 8)
      for (int b = 0; b < kBatch; ++b) sum32[b][0] = sum32[b][1] = _mm256_setzero_si256();
    for (int g = 0; g < 8; ++g) {
      const __m256i u0 = _mm256_sub_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.codes[g][0])), lo_v);
      const __m256i u1 = _mm256_sub_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.codes[g][kHalfRows])), lo_v);
      for (int b = 0; b < kBatch; ++b) {
        int32_t four;
        std::memcpy(&four, codes + (b * blocks + k) * 32 + 4 * g, 4);
        const __m256i a = _mm256_set1_epi32(four);
        s[b][0] = _mm256_add_epi16(s[b][0], _mm256_maddubs_epi16(u0, a));
        s[b][1] = _mm256_add_epi16(s[b][1], _mm256_maddubs_epi16(u1, a));
      }
      if constexpr (kGroups < 8)
        if ((g + 1) % kGroups == 0)
          for (int b = 0; b < kBatch; ++b)
            for (int half = 0; half < 2; ++half) {
              sum32[b][half] = _mm256_add_epi32(sum32[b][half], _mm256_madd_epi16(s[b][half], ones));
              s[b][half] = _mm256_setzero_si256();
            }
    }
    for (int half = 0; half < 2; ++half) {
      const BlockTerms terms(p, half);
      for (int b = 0; b < kBatch; ++b)
        terms.apply(acc[b][half], acts[b * blocks + k],
                    _mm256_add_epi32(kGroups < 8 ? sum32[b][half] : _mm256_madd_epi16(s[b][half], ones),
                                     _mm256_set1_epi32(correction[b * blocks + k])));
    }
  }
  for (int b = 0; b < kBatch; ++b)
    for (int half = 0; kHalfRows * half < rows; ++half)
      store_rows(y + b * ldy + kHalfRows * half, acc[b][half], rows - kHalfRows * half);
}

// The operands one tile of kBatch activation rows needs, made once per tile.
struct TileScratch {
  std::vector<int16_t> wide;      // the wide path's int16 codes
  std::vector<int8_t> narrow;     // the narrow path's signed codes
  std::vector<int32_t> correction;
};

template <int kBatch>
void panel_times_batch(const PackedPanelBlock* panel, const PackedActivationBlock* acts, int64_t blocks, float* y,
                       int64_t ldy, int rows, int range, int lo, TileScratch& t) {
  if (range <= 31) {
    t.narrow.resize(static_cast<size_t>(kBatch * blocks * 32));
    t.correction.resize(static_cast<size_t>(kBatch * blocks));
    signed_activations(acts, kBatch * blocks, lo, t.narrow.data(), t.correction.data());
    if (range <= 15) panel_narrow<kBatch, 8>(panel, acts, t.narrow.data(), t.correction.data(), blocks, lo, y, ldy, rows);
    else panel_narrow<kBatch, 4>(panel, acts, t.narrow.data(), t.correction.data(), blocks, lo, y, ldy, rows);
    return;
  }
  t.wide.resize(static_cast<size_t>(kBatch * blocks * 32));
  widen_activations(acts, kBatch * blocks, t.wide.data());
  for (int half = 0; kHalfRows * half < rows; ++half)
    half_panel_times_batch<kBatch>(panel, acts, t.wide.data(), blocks, half, y, ldy, rows);
}

}  // namespace

void packed_gemm__avx2(const PackedPanelBlock* panel, const PackedActivationBlock* acts, int64_t blocks,
                       int64_t batch, float* y, int64_t ldy, int rows) {
  thread_local TileScratch scratch;
  int lo, hi;
  level_range(panel, blocks, lo, hi);
  const int range = hi - lo;
  int64_t b = 0;
  for (; b + 4 <= batch; b += 4)
    panel_times_batch<4>(panel, acts + b * blocks, blocks, y + b * ldy, ldy, rows, range, lo, scratch);
  for (; b + 2 <= batch; b += 2)
    panel_times_batch<2>(panel, acts + b * blocks, blocks, y + b * ldy, ldy, rows, range, lo, scratch);
  for (; b < batch; ++b) panel_times_batch<1>(panel, acts + b * blocks, blocks, y + b * ldy, ldy, rows, range, lo, scratch);
}

}  // namespace lowbit::kernels
