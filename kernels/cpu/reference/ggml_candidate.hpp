#pragma once
// ggml's choice as the last candidate of lowbit's K-quant searches: per 256-element
// block, the search's result is replaced by what the format's `fast` quantizer (ggml's
// algorithm, kquants_ggml.cpp) writes whenever that decodes with a lower objective.
// So no block is ever worse than ggml's on the objective the standard and best
// efforts claim: sum_i imp_i * (x_i - decoded_i)^2 (imp_i = 1 without importance),
// evaluated in float64 in element order on the scalar dequantizer's output.
// The searches miss ggml's answer mainly on degenerate blocks (on-grid data, a
// constant, two levels, one spike), where ggml's rounding from the max lands exactly.
// ggml's block comes from the dispatched `fast` kernel and both blocks are decoded by
// the dispatched decoder: every variant of those writes the scalar reference's bytes
// and floats (the family tests check it), so this costs an eighth of a scalar run
// and changes nothing in the output.
#include <cstdint>
#include <cstring>
#include <vector>

#include "lowbit/formats/blocks.hpp"
#include "lowbit/kernels/registry.hpp"

namespace lowbit::kernels {
namespace {

// The objective of two decodings of one block, summed side by side: two independent
// dependency chains, each in element order.
inline void block_objectives(const float* x, const float* a, const float* b, const float* importance, double& ea,
                             double& eb) {
  ea = eb = 0;
  for (int i = 0; i < QK_K; ++i) {
    const double wi = importance ? static_cast<double>(importance[i]) : 1.0;
    const double ra = static_cast<double>(x[i]) - a[i], rb = static_cast<double>(x[i]) - b[i];
    ea += wi * ra * ra;
    eb += wi * rb * rb;
  }
}

inline void keep_ggml_where_better(Format f, const float* x, void* y, int64_t n, const float* importance,
                                   size_t block_bytes) {
  const QuantizeRowFn ggml = select_quantize_kernel(f, QuantizeEffort::fast).fn;
  const DequantizeRowFn decode = select_dequantize_kernel(f).fn;
  std::vector<unsigned char> theirs(static_cast<size_t>(n / QK_K) * block_bytes);
  ggml(x, theirs.data(), n, importance);
  float ours_dec[QK_K], theirs_dec[QK_K];
  auto* out = static_cast<unsigned char*>(y);
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const float* xb = x + b * QK_K;
    const float* ib = importance ? importance + b * QK_K : nullptr;
    unsigned char* ours = out + b * block_bytes;
    const unsigned char* cand = theirs.data() + b * block_bytes;
    decode(ours, ours_dec, QK_K);
    decode(cand, theirs_dec, QK_K);
    double e_ours, e_theirs;
    block_objectives(xb, ours_dec, theirs_dec, ib, e_ours, e_theirs);
    if (e_theirs < e_ours) std::memcpy(ours, cand, block_bytes);
  }
}

}  // namespace
}  // namespace lowbit::kernels
