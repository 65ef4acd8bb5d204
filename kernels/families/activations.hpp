#pragma once
// The activation-quantize family: float32 -> Q8_0 / Q8_1 / Q8_K with ggml's
// reference rounding.
//   key         Format (Q8_0, Q8_1, Q8_K)
//   comparison  exact_bytes: every variant writes the scalar reference's bytes, which
//               are ggml's quantize_row_q8_*_ref bytes (tests/interop checks those
//               against libggml itself).
//   inputs      standard_patterns(), and each of them again 16x wider plus three
//               blocks, so variants that take sixteen blocks at a time meet every
//               distribution and scale there and in the tail.
// The scalar references are checked against properties derived from the format, not
// from their own output: codes within +-127, every element within half a step of its
// code (|x - d q| <= d/2, d = amax/127), Q8_1's s = d * sum(q) to fp16 rounding,
// Q8_K's bsums the sums of their 16 codes, zeros to zero blocks.
#include <algorithm>
#include <cmath>

#include "families/family.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"
#include "lowbit/kernels/activations.hpp"

namespace lowbit::kernel_families {

struct ActivationsFamily {
  using Fn = QuantizeActivationsFn;
  using Key = Format;
  using Variant = ActivationKernel;
  static constexpr const char* name = "quantize_activations";
  static constexpr Comparison comparison = Comparison::exact_bytes;
  static const KernelTable<Fn, Key>& table() { return activation_kernels(); }

  // One block's properties: codes, step and sums against x.
  static std::string check_block(Format f, const float* x, const std::byte* block, const std::string& where) {
    const int n = traits(f).block_elems;
    const int8_t* qs;
    double d;            // the step the codes were rounded to, from x alone
    double signed_step;  // what a code decodes through (Q8_K's d is -max / 127)
    double amax = 0;
    for (int j = 0; j < n; ++j) amax = std::max(amax, std::fabs(double(x[j])));
    if (f == Format::Q8_K) {
      const auto* b = reinterpret_cast<const block_q8_K*>(block);
      qs = b->qs;
      d = amax / 127.0;
      for (int g = 0; g < 16; ++g) {
        int sum = 0;
        for (int k = 0; k < 16; ++k) sum += qs[16 * g + k];
        if (sum != b->bsums[g]) return where + ": bsums[" + std::to_string(g) + "] is not the sum of its codes";
      }
      if (std::fabs(std::fabs(double(b->d)) - d) > 1e-6 * d) return where + ": d is not amax / 127";
      signed_step = b->d;
    } else {
      qs = f == Format::Q8_0 ? reinterpret_cast<const block_q8_0*>(block)->qs
                             : reinterpret_cast<const block_q8_1*>(block)->qs;
      uint16_t dh;
      std::memcpy(&dh, block, 2);
      d = amax / 127.0;
      signed_step = d;
      if (dh != fp32_to_fp16(static_cast<float>(amax / 127.0))) return where + ": d is not fp16(amax / 127)";
      if (f == Format::Q8_1) {
        uint16_t sh;
        std::memcpy(&sh, block + 2, 2);
        int sum = 0;
        for (int j = 0; j < n; ++j) sum += qs[j];
        const double want = sum * d, got = fp16_to_fp32(sh);
        // fp16 overflows to Inf beyond 65520, as in ggml (which then reads s as Inf too).
        const bool ok = std::fabs(want) >= 65520.0 * (1 + 1e-3)
                            ? std::isinf(got) && (got > 0) == (want > 0)
                            : std::fabs(got - want) <= std::ldexp(std::fabs(want), -10) + std::ldexp(1.0, -24) ||
                                  (std::fabs(want) >= 65504.0 * (1 - 1e-3) && std::fabs(got) >= 65504.0);
        if (!ok) return where + ": s is not d * sum(q)";
      }
    }
    for (int j = 0; j < n; ++j) {
      if (qs[j] < -127 || qs[j] > 127) return where + ": code " + std::to_string(qs[j]) + " outside +-127";
      const double y = signed_step * qs[j];
      if (std::fabs(double(x[j]) - y) > d * (0.5 + 1e-5)) return mismatch(where, j, x[j], y);
    }
    return {};
  }

  static std::vector<InputPattern> patterns() {
    std::vector<InputPattern> p = standard_patterns();
    const size_t n = p.size();
    for (size_t i = 0; i < n; ++i) {
      InputPattern wide = p[i];
      wide.name += "_x16";
      wide.blocks = 16 * wide.blocks + 3;
      p.push_back(wide);
    }
    return p;
  }

  static std::string check(const Variant& v) {
    const Variant& ref = table().reference(v.key);
    const int block = traits(v.key).block_elems;
    const size_t block_bytes = traits(v.key).block_bytes;
    for (const InputPattern& p : patterns()) {
      const int64_t n = pattern_row_elems(v.key, p);
      const std::vector<float> x = pattern_values(p, 1, n, 3);
      const size_t bytes = row_bytes(v.key, n);
      OffsetBuffer in(static_cast<size_t>(n) * 4, p.unaligned ? kUnalignedShift : 0);
      std::memcpy(in.floats(), x.data(), static_cast<size_t>(n) * 4);
      OffsetBuffer out(bytes, p.unaligned ? kUnalignedShift : 0);
      std::memset(out.data(), 0xa5, bytes);
      v.fn(in.floats(), out.data(), n);
      if (v.is_reference()) {
        for (int64_t b = 0; b < n / block; ++b)
          if (std::string e = check_block(v.key, x.data() + b * block, out.data() + b * block_bytes,
                                          "pattern " + p.name + ", block " + std::to_string(b));
              !e.empty())
            return e;
        continue;
      }
      std::vector<std::byte> want(bytes);
      ref.fn(x.data(), want.data(), n);
      for (size_t i = 0; i < bytes; ++i)
        if (want[i] != out.data()[i])
          return "pattern " + p.name + ", byte " + std::to_string(i) + ": reference " + std::to_string(int(want[i])) +
                 ", variant " + std::to_string(int(out.data()[i]));
    }
    return {};
  }
};

}  // namespace lowbit::kernel_families
