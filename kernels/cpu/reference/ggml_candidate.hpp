#pragma once
// ggml's choice as the last candidate of lowbit's K-quant searches: per 256-element
// block, the search's result is replaced by what the format's `fast` quantizer (ggml's
// algorithm, kquants_ggml.cpp) writes whenever that decodes with a lower objective.
// So no block is ever worse than ggml's on the objective the standard and best
// efforts claim: sum_i imp_i * (x_i - decoded_i)^2 (imp_i = 1 without importance),
// evaluated in float64 in element order on the scalar dequantizer's output.
// The searches miss ggml's answer mainly on degenerate blocks (on-grid data, a
// constant, two levels, one spike), where ggml's rounding from the max lands exactly.
// ggml's block comes from the dispatched `fast` kernel: every variant of it writes the
// scalar reference's bytes (the family test checks it), so this costs an eighth of
// a scalar run and changes nothing in the output.
#include <cstdint>
#include <cstring>
#include <vector>

#include "lowbit/formats/blocks.hpp"
#include "lowbit/kernels/registry.hpp"

namespace lowbit::kernels {
namespace {

inline double block_objective(const float* x, const float* decoded, const float* importance) {
  double e = 0;
  for (int i = 0; i < QK_K; ++i) {
    const double r = static_cast<double>(x[i]) - decoded[i];
    e += (importance ? static_cast<double>(importance[i]) : 1.0) * r * r;
  }
  return e;
}

inline void keep_ggml_where_better(Format f, const float* x, void* y, int64_t n, const float* importance,
                                   size_t block_bytes, DequantizeRowFn decode) {
  const QuantizeRowFn ggml = select_quantize_kernel(f, QuantizeEffort::fast).fn;
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
    if (block_objective(xb, theirs_dec, ib) < block_objective(xb, ours_dec, ib)) std::memcpy(ours, cand, block_bytes);
  }
}

}  // namespace
}  // namespace lowbit::kernels
