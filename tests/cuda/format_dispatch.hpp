#pragma once
// Calls f(std::integral_constant<Format, F>{}) for a runtime block format, so tests can
// reach the per-format templates of kernels/common/block_levels.hpp.
#include <type_traits>

#include "lowbit/formats/format.hpp"

namespace lowbit::test {

template <class Fn>
bool visit_block_format(Format f, Fn&& fn) {
  switch (f) {
#define LOWBIT_VISIT(X) \
  case Format::X: fn(std::integral_constant<Format, Format::X>{}); return true;
    LOWBIT_VISIT(Q4_0) LOWBIT_VISIT(Q4_1) LOWBIT_VISIT(Q5_0) LOWBIT_VISIT(Q5_1) LOWBIT_VISIT(Q8_0) LOWBIT_VISIT(Q8_1)
    LOWBIT_VISIT(Q2_K) LOWBIT_VISIT(Q3_K) LOWBIT_VISIT(Q4_K) LOWBIT_VISIT(Q5_K) LOWBIT_VISIT(Q6_K) LOWBIT_VISIT(Q8_K)
    LOWBIT_VISIT(IQ4_NL) LOWBIT_VISIT(IQ4_XS)
#undef LOWBIT_VISIT
    default: return false;
  }
}

}  // namespace lowbit::test
