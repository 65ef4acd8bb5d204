#pragma once
// The packed GEMM family (lowbit/kernels/packed_matrix.hpp): 16-row weight panels
// times a batch of 32-element-block activations.
//   key         PackedGemmKey (one layout)
//   comparison  exact_bytes: every variant performs the reference's per-lane
//               operations (exact integer block sums, then two fused multiply-adds
//               per block in block order), so outputs are equal bit for bit
//   inputs      random panels (levels over the full int8 range, and over ranges of
//               16 and 32 values, the 4- and 5-bit formats' kind, at the ends of int8
//               and around zero, plus ranges one value wider; scales and offsets of both signs, zero
//               offsets in whole blocks and in single rows, consistent biases), random activation blocks (codes over the full
//               byte range); batch sizes 1..17 (every remainder of the 8-, 4- and
//               2-row steps), full panels, partial ones of 12 and 7 rows, and calls
//               over three panels (40 rows, the last one partial) whose level ranges
//               differ, outputs poisoned around the written tile.
// The scalar reference is checked against a float64 sum of (scale * level + offset)
// * (d * code) within 1e-6 of the terms' magnitude.
#include <cmath>
#include <random>
#include <utility>

#include "families/family.hpp"
#include "lowbit/kernels/packed_matrix.hpp"

namespace lowbit::kernel_families {

struct PackedGemmFamily {
  using Fn = PackedGemmFn;
  using Key = PackedGemmKey;
  using Variant = PackedGemmKernel;
  static constexpr const char* name = "packed_gemm";
  static constexpr Comparison comparison = Comparison::exact_bytes;
  static const KernelTable<Fn, Key>& table() { return packed_gemm_kernels(); }

  static std::string check(const Variant& v) {
    std::mt19937 rng(41);
    std::uniform_int_distribution<int> code(0, 255);
    std::uniform_real_distribution<float> real(-2.0f, 2.0f);
    const int64_t blocks = 5;
    // Level ranges: int8's; 16 and 32 values (a SIMD variant may take those as 4- or
    // 5-bit unsigned codes plus the smallest level) around zero and at the ends of
    // int8; 17 and 33 values, one too many for those.
    const std::pair<int, int> ranges[] = {{-128, 127}, {-8, 7},  {0, 15},    {-128, -113}, {112, 127},
                                          {-8, 8},    {0, 31}, {-16, 15}, {-128, -97},  {-16, 16}};
    for (const auto& [lowest, highest] : ranges)
    for (int rows : {16, 12, 7, 40})
      for (int64_t batch = 1; batch <= 17; ++batch) {
        std::uniform_int_distribution<int> level(lowest, highest);
        const int64_t panels = (rows + 15) / 16;
        std::vector<PackedPanelBlock> panel(static_cast<size_t>(panels * blocks));
        for (int64_t k = 0; k < panels * blocks; ++k)
          for (int r = 0; r < 16; ++r) {
            PackedPanelBlock& p = panel[static_cast<size_t>(k)];
            // A multi-panel call's middle panel takes the full int8 range: the call
            // then mixes panels that a SIMD variant takes by different instructions.
            std::uniform_int_distribution<int> any_level(-128, 127);
            const bool wide_panel = panels > 1 && k / blocks == 1;
            int32_t sum = 0;
            for (int j = 0; j < 32; ++j)
              sum += p.codes[j / 4][r][j % 4] = static_cast<int8_t>(wide_panel ? any_level(rng) : level(rng));
            p.bias[r] = 128 * sum;
            p.scale[r] = real(rng) * 1e-2f;
            // Blocks without offsets (Q4_0's kind), and blocks where some rows have none:
            // both of the variants' offset paths.
            p.offset[r] = k % 2 == 0 || r % 4 == 1 ? 0.0f : real(rng);
          }
        std::vector<PackedActivationBlock> acts(static_cast<size_t>(batch * blocks));
        for (PackedActivationBlock& a : acts) {
          int32_t sum = 0;
          for (uint8_t& q : a.q) sum += (q = static_cast<uint8_t>(code(rng))) - 128;
          a.d = std::fabs(real(rng)) * 1e-2f;
          a.dsum = a.d * static_cast<float>(sum);
        }
        const int64_t ldy = rows + 3;  // wider than the tile: the columns past `rows` must stay poisoned
        std::vector<float> want(static_cast<size_t>(batch * ldy), -5.0f), got(want.size(), -5.0f);
        table().reference(PackedGemmKey{}).fn(panel.data(), acts.data(), blocks, batch, want.data(), ldy, rows);
        v.fn(panel.data(), acts.data(), blocks, batch, got.data(), ldy, rows);
        const std::string where = "levels " + std::to_string(lowest) + ".." + std::to_string(highest) + ", rows " +
                                  std::to_string(rows) + ", batch " + std::to_string(batch);
        for (size_t i = 0; i < got.size(); ++i) {
          const int64_t r = static_cast<int64_t>(i) % ldy;
          if (r >= rows && got[i] != -5.0f) return where + ": wrote column " + std::to_string(r);
          if (std::memcmp(&got[i], &want[i], 4) != 0) return mismatch(where, static_cast<int64_t>(i), want[i], got[i]);
        }
        if (!v.is_reference()) continue;
        for (int64_t b = 0; b < batch; ++b)
          for (int r = 0; r < rows; ++r) {
            const int pr = r % 16;  // the row within its panel
            double exact = 0, magnitude = 0;
            for (int64_t k = 0; k < blocks; ++k) {
              const PackedPanelBlock& p = panel[(r / 16) * blocks + k];
              const PackedActivationBlock& a = acts[b * blocks + k];
              for (int j = 0; j < 32; ++j) {
                const double w = double(p.scale[pr]) * p.codes[j / 4][pr][j % 4] + p.offset[pr];
                const double x = double(a.d) * (int(a.q[j]) - 128);
                exact += w * x;
                magnitude += (std::fabs(double(p.scale[pr]) * p.codes[j / 4][pr][j % 4]) + std::fabs(p.offset[pr])) *
                             std::fabs(x);
              }
              // The reference multiplies the offset by dsum = d * sum (rounded once).
              exact += double(p.offset[pr]) * (double(a.dsum) - [&] {
                         double s = 0;
                         for (int j = 0; j < 32; ++j) s += double(a.d) * (int(a.q[j]) - 128);
                         return s;
                       }());
            }
            const double y = want[b * ldy + r];
            if (!(std::fabs(y - exact) <= 1e-6 * magnitude)) return mismatch(where + " vs float64", b * ldy + r, exact, y);
          }
      }
    return {};
  }
};

}  // namespace lowbit::kernel_families
