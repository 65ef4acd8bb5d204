// F32, F16 and BF16 "quantizers": plain conversions with round to nearest even.
#include <cstring>

#include "lists/declarations.hpp"
#include "lowbit/core/half.hpp"

namespace lowbit::kernels {

// An empty row may come with null pointers (e.g. a tensor with a zero dimension),
// and memcpy with a null pointer is undefined even for zero bytes.
void quantize_row_f32__scalar(const float* x, void* y, int64_t n, const float*) {
  if (n > 0) std::memcpy(y, x, static_cast<size_t>(n) * sizeof(float));
}
void dequantize_row_f32__scalar(const void* x, float* y, int64_t n) {
  if (n > 0) std::memcpy(y, x, static_cast<size_t>(n) * sizeof(float));
}

void quantize_row_f16__scalar(const float* x, void* y, int64_t n, const float*) {
  auto* out = static_cast<uint16_t*>(y);
  for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_fp16(x[i]);
}
void dequantize_row_f16__scalar(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const uint16_t*>(x);
  for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(in[i]);
}

void quantize_row_bf16__scalar(const float* x, void* y, int64_t n, const float*) {
  auto* out = static_cast<uint16_t*>(y);
  for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_bf16(x[i]);
}
void dequantize_row_bf16__scalar(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const uint16_t*>(x);
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_fp32(in[i]);
}

}  // namespace lowbit::kernels
