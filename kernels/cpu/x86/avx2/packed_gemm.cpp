// AVX2 packed GEMM, for x86 CPUs without VNNI. Without dpbusd the byte products
// have to stay exact another way, and which way depends on the panel's levels (one
// min/max scan per panel and call):
//  - Narrow panels, whose levels span at most 16 values (Q4_0, Q4_1, Q4_K) or 32
//    (Q5_0, Q5_1, Q5_K): the levels minus the panel's smallest, u in 0..15 or 0..31,
//    are unsigned bytes and the activation codes (q - 128) signed ones, so vpmaddubsw
//    multiplies 32 of them into 16-bit pair sums (at most 2 * 31 * 128) that eight or
//    four column groups add in int16 before one vpmaddwd widens them; the smallest
//    level times each activation block's code sum puts the offset back. The signed
//    codes and the code sums do not depend on the panel: they are made once per call
//    for all of its panels (PackedMatrix::multiply gives a call eight).
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

#include "cpu/packed_panels.hpp"
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

// The activation codes q - 128 as int8, [row][block][32], and each block's code sum:
// the narrow path's operands, the same for every panel.
void signed_activations(const PackedActivationBlock* acts, int64_t count, int8_t* out, int32_t* code_sums) {
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int64_t i = 0; i < count; ++i) {
    const __m256i a = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(acts[i].q)), flip);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32 * i), a);
    const __m256i sums = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), a), _mm256_set1_epi16(1));
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(sums), _mm256_extracti128_si256(sums, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
    code_sums[i] = _mm_cvtsi128_si32(t);
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

// The two inner kernels (this one and panel_narrow) stay functions of their own:
// inlined into the per-call loop over panels, GCC spilled registers in the int16 path
// (9% more instructions per panel under callgrind).

// Rows [8 * half, 8 * half + 8) of the panel times kBatch activation rows.
template <int kBatch>
[[gnu::noinline]] void half_panel_times_batch(const PackedPanelBlock* panel, const PackedActivationBlock* acts,
                                             const int16_t* codes, int64_t blocks, int half, float* y, int64_t ldy,
                                             int rows) {
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
[[gnu::noinline]] void panel_narrow(const PackedPanelBlock* panel, const PackedActivationBlock* acts,
                                   const int8_t* codes, const int32_t* code_sums, int64_t blocks, int lo, float* y,
                                   int64_t ldy, int rows) {
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
                                     _mm256_set1_epi32(lo * code_sums[b * blocks + k])));
    }
  }
  for (int b = 0; b < kBatch; ++b)
    for (int half = 0; kHalfRows * half < rows; ++half)
      store_rows(y + b * ldy + kHalfRows * half, acc[b][half], rows - kHalfRows * half);
}

// The activation operands of one call: the narrow path's signed codes and code sums
// of every row (made once, for all of the call's narrow panels), and the wide path's
// int16 codes of one tile (made per tile and panel: all rows' would not stay in L2
// next to the panel).
struct CallScratch {
  std::vector<int8_t> narrow;
  std::vector<int32_t> code_sums;
  std::vector<int16_t> wide;
};

template <int kBatch>
void tile_narrow(const PackedPanelBlock* panel, const PackedActivationBlock* acts, const int8_t* codes,
                 const int32_t* code_sums, int64_t blocks, int lo, int range, float* y, int64_t ldy, int rows) {
  if (range <= 15) panel_narrow<kBatch, 8>(panel, acts, codes, code_sums, blocks, lo, y, ldy, rows);
  else panel_narrow<kBatch, 4>(panel, acts, codes, code_sums, blocks, lo, y, ldy, rows);
}

template <int kBatch>
void tile_wide(const PackedPanelBlock* panel, const PackedActivationBlock* acts, int64_t blocks, float* y,
               int64_t ldy, int rows, std::vector<int16_t>& wide) {
  wide.resize(static_cast<size_t>(kBatch * blocks * 32));
  widen_activations(acts, kBatch * blocks, wide.data());
  for (int half = 0; kHalfRows * half < rows; ++half)
    half_panel_times_batch<kBatch>(panel, acts, wide.data(), blocks, half, y, ldy, rows);
}

}  // namespace

void packed_gemm__avx2(const PackedPanelBlock* panels, const PackedActivationBlock* acts, int64_t blocks,
                       int64_t batch, float* y, int64_t ldy, int all_rows) {
  thread_local CallScratch s;
  bool narrow_ready = false;
  each_panel(panels, blocks, y, all_rows, [&](const PackedPanelBlock* panel, float* out, int rows) {
    int lo, hi;
    level_range(panel, blocks, lo, hi);
    const int range = hi - lo;
    int64_t b = 0;
    if (range > 31) {
      for (; b + 4 <= batch; b += 4) tile_wide<4>(panel, acts + b * blocks, blocks, out + b * ldy, ldy, rows, s.wide);
      for (; b + 2 <= batch; b += 2) tile_wide<2>(panel, acts + b * blocks, blocks, out + b * ldy, ldy, rows, s.wide);
      for (; b < batch; ++b) tile_wide<1>(panel, acts + b * blocks, blocks, out + b * ldy, ldy, rows, s.wide);
      return;
    }
    if (!narrow_ready) {
      s.narrow.resize(static_cast<size_t>(batch * blocks * 32));
      s.code_sums.resize(static_cast<size_t>(batch * blocks));
      signed_activations(acts, batch * blocks, s.narrow.data(), s.code_sums.data());
      narrow_ready = true;
    }
    const int8_t* codes = s.narrow.data();
    const int32_t* sums = s.code_sums.data();
    for (; b + 4 <= batch; b += 4)
      tile_narrow<4>(panel, acts + b * blocks, codes + b * blocks * 32, sums + b * blocks, blocks, lo, range,
                     out + b * ldy, ldy, rows);
    for (; b + 2 <= batch; b += 2)
      tile_narrow<2>(panel, acts + b * blocks, codes + b * blocks * 32, sums + b * blocks, blocks, lo, range,
                     out + b * ldy, ldy, rows);
    for (; b < batch; ++b)
      tile_narrow<1>(panel, acts + b * blocks, codes + b * blocks * 32, sums + b * blocks, blocks, lo, range,
                     out + b * ldy, ldy, rows);
  });
}

}  // namespace lowbit::kernels
