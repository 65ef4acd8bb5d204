#pragma once
// The GSQ search family: the squared errors of one group's candidate parameters.
//   key         GsqSearchKey (every scheme and bit width)
//   comparison  exact_bytes against the sum the test forms itself: each element coded
//               by encode_value and decoded by decode_value (gsq/group_fit.hpp, the
//               quantizer's own definition of a code), the error squared and weighted
//               in double, element i into lane i % 4, lanes (l0 + l1) + (l2 + l3). So
//               the scalar reference is checked too, not only compared.
//   inputs      groups of 1..259 values of several distributions and scales (all-zero,
//               constant and two-level groups among them), without and with importance
//               (zeros included); 1..37 candidates (partial lane batches) of both scale
//               signs, from far too small (codes clamped) to far too large (all codes
//               at the zero), for the integer-zero and float-minimum schemes at 2, 3, 4
//               and 8 bits; unaligned inputs.
#include <cstring>
#include <random>

#include "families/family.hpp"
#include "lowbit/gsq/group_fit.hpp"
#include "lowbit/kernels/gsq_search.hpp"

namespace lowbit::kernel_families {

struct GsqSearchFamily {
  using Fn = GsqSearchFn;
  using Key = GsqSearchKey;
  using Variant = GsqSearchKernel;
  static constexpr const char* name = "gsq_search";
  static constexpr Comparison comparison = Comparison::exact_bytes;
  static const KernelTable<Fn, Key>& table() { return gsq_search_kernels(); }

  // The family's definition, element by element.
  static double expected(const GsqConfig& cfg, const GroupParams& p, const float* x, const float* w, int64_t n) {
    double lanes[4] = {0, 0, 0, 0};
    for (int64_t i = 0; i < n; ++i) {
      const double d = static_cast<double>(decode_value(cfg, p, encode_value(cfg, p, x[i]))) - x[i];
      lanes[i % 4] += (w ? static_cast<double>(w[i]) : 1.0) * (d * d);
    }
    return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  }

  static std::string check(const Variant& v) {
    std::mt19937 rng(20261202);
    const Distribution dists[] = {Distribution::heavy_tailed, Distribution::gaussian, Distribution::outliers};
    int case_no = 0;
    for (int64_t n : {1, 3, 4, 7, 32, 128, 259})
      for (int shape = 0; shape < 6; ++shape) {
        // Values: three distributions at unit scale, one at 1e-6, a constant group, a
        // two-level group with exact zeros.
        std::vector<float> x = synthetic_weights(1, n, 7 + n + shape, dists[shape % 3]);
        if (shape == 3)
          for (float& e : x) e *= 1e-6f;
        if (shape == 4) std::fill(x.begin(), x.end(), -0.3125f);
        if (shape == 5)
          for (int64_t i = 0; i < n; ++i) x[i] = i % 3 == 0 ? 0.0f : (i % 3 == 1 ? 0.75f : -1.5f);
        float amax = 0;
        for (float e : x) amax = std::max(amax, std::fabs(e));
        if (amax == 0) amax = 1;
        std::vector<float> w = synthetic_importance(n, 11 + n);
        for (int64_t i = 0; i < n; i += 5) w[i] = 0.0f;
        for (int bits : {2, 3, 4, 8})
          for (bool fmin : {false, true}) {
            GsqConfig cfg;
            cfg.bits = bits;
            cfg.scheme = fmin ? GsqScheme::asymmetric_float : GsqScheme::asymmetric;
            const int maxq = (1 << bits) - 1;
            const int count = 1 + static_cast<int>(rng() % 37);
            std::vector<GroupParams> cand(static_cast<size_t>(count));
            std::vector<float> scales, offsets;
            for (int k = 0; k < count; ++k) {
              GroupParams& p = cand[static_cast<size_t>(k)];
              const float unit = 2.0f * amax / static_cast<float>(maxq);
              const float factor = k % 9 == 7 ? (k % 2 ? 1e-4f : 1e-7f)  // quotients past 4096, and past 2^22
                                 : k % 9 == 8 ? 1e4f : 0.3f + 0.1f * static_cast<float>(rng() % 12);
              p.scale = round_to_storage(ScaleStorage::fp16, (k % 4 == 3 ? -unit : unit) * factor);
              if (p.scale == 0.0f) p.scale = factor < 1 ? 1e-7f * unit : unit;
              p.zero = static_cast<int32_t>(rng() % static_cast<unsigned>(maxq + 1));
              p.min = -amax * (0.5f + 0.1f * static_cast<float>(rng() % 10));
              scales.push_back(p.scale);
              offsets.push_back(fmin ? p.min : static_cast<float>(p.zero));
            }
            for (bool weighted : {false, true}) {
              ++case_no;
              // Values and weights 4 bytes past a 64-byte boundary, the doubles 8 bytes
              // past one: off every SIMD alignment, within what each type needs.
              OffsetBuffer xb(static_cast<size_t>(n) * 4, kUnalignedShift), wb(static_cast<size_t>(n) * 4, kUnalignedShift);
              OffsetBuffer eb(static_cast<size_t>(count) * 8 + 8, sizeof(double));
              std::memcpy(xb.data(), x.data(), static_cast<size_t>(n) * 4);
              std::memcpy(wb.data(), w.data(), static_cast<size_t>(n) * 4);
              double* err = reinterpret_cast<double*>(eb.data());
              std::memset(err, 0xff, static_cast<size_t>(count) * 8 + 8);  // NaN poison, and a sentinel
              const GsqCandidateSet set{scales.data(), offsets.data(), count, static_cast<float>(maxq), fmin};
              v.fn(set, xb.floats(), weighted ? wb.floats() : nullptr, n, err);
              for (int k = 0; k < count; ++k) {
                const double want = expected(cfg, cand[static_cast<size_t>(k)], x.data(), weighted ? w.data() : nullptr, n);
                if (std::memcmp(&want, &err[k], 8) != 0)
                  return "case " + std::to_string(case_no) + " (n " + std::to_string(n) + ", shape " +
                         std::to_string(shape) + ", " + std::to_string(bits) + " bits, " + (fmin ? "float min" : "zero") +
                         (weighted ? ", weighted" : "") + "): " + mismatch("candidate", k, want, err[k]);
              }
              uint64_t sentinel;
              std::memcpy(&sentinel, &err[count], 8);
              if (sentinel != ~uint64_t{0}) return "case " + std::to_string(case_no) + ": wrote past the last candidate";
            }
          }
      }
    return {};
  }
};

}  // namespace lowbit::kernel_families
