#pragma once
// The GSQ search family: the inner loop of GSQ's mse and importance searches
// (gsq/group_fit.cpp), which scores every candidate (scale, zero or minimum) of one
// group by its squared reconstruction error. Variants put candidates in vector lanes
// and keep, for each one, the scalar reference's float64 summation order, so every
// variant returns the same doubles and the search picks the same parameters (the
// same file bytes) on every machine.
#include <cstdint>
#include <string>

#include "lowbit/kernels/kernel_table.hpp"

namespace lowbit {

// The candidates of one group: count (scale, offset) pairs and the code range.
struct GsqCandidateSet {
  const float* scales;   // count scales, none of them zero
  const float* offsets;  // the integer zero as a float, or (float_min) the minimum
  int64_t count;
  float maxq;            // 2^bits - 1
  bool float_min;        // w = s q + m, q = round((x - m) / s); else w = s (q - z), q = round(x / s) + z
};

// err[k] = sum_i w[i] (decode(encode(x[i])) - x[i])^2 for candidate k, as encode_value
// and decode_value (gsq/group_fit.hpp) define a code: the decoded value in float, the
// difference, square and weighting in double, element i added to lane i % 4 in order
// and the lanes combined as (l0 + l1) + (l2 + l3). w == nullptr weighs every element 1.
using GsqSearchFn = void (*)(const GsqCandidateSet& c, const float* x, const float* w, int64_t n, double* err);

// The family's key: one entry serves every scheme and bit width.
struct GsqSearchKey {
  bool operator==(const GsqSearchKey&) const = default;
};
std::string kernel_key_name(GsqSearchKey);

using GsqSearchKernel = KernelVariant<GsqSearchFn, GsqSearchKey>;
const KernelTable<GsqSearchFn, GsqSearchKey>& gsq_search_kernels();

}  // namespace lowbit
