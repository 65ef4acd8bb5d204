#pragma once
// The code widths the GSQ kernels specialise (GsqConfig's 2, 3, 4, 5, 6 and 8 bits):
// with_gsq_width(bits, f) calls f(std::integral_constant<int, B>{}) and returns true,
// or returns false without calling it for any other width (the caller then runs the
// scalar reference). One switch for every ISA's decoder and GEMVs. Internal linkage,
// as the rest of kernels/common.
#include <type_traits>

namespace lowbit::kernels {
namespace {

template <class F>
inline bool with_gsq_width(int bits, F&& f) {
  switch (bits) {
    case 2: f(std::integral_constant<int, 2>{}); return true;
    case 3: f(std::integral_constant<int, 3>{}); return true;
    case 4: f(std::integral_constant<int, 4>{}); return true;
    case 5: f(std::integral_constant<int, 5>{}); return true;
    case 6: f(std::integral_constant<int, 6>{}); return true;
    case 8: f(std::integral_constant<int, 8>{}); return true;
    default: return false;
  }
}

}  // namespace
}  // namespace lowbit::kernels
