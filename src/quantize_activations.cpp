#include <cmath>
#include <cstdio>
#include <string>

#include "common/checks.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/core/parallel.hpp"
#include "lowbit/formats/quantize.hpp"
#include "lowbit/kernels/activations.hpp"

namespace lowbit {

void quantize_activations(Format f, ConstMatrixView<float> src, std::span<std::byte> dst) {
  const FormatTraits& t = traits(f);
  const std::string what = std::string(t.name) + " quantize_activations: ";
  if (f != Format::Q8_0 && f != Format::Q8_1 && f != Format::Q8_K)
    throw Error(what + "no activation path (Q8_0, Q8_1 and Q8_K have one)");
  const size_t need = quantized_size(f, src.rows, src.cols);  // checks shape and row length
  if (src.stride < src.cols)
    throw Error(what + "row stride " + std::to_string(src.stride) + " is smaller than the row length " +
                std::to_string(src.cols));
  if (src.rows == 0 || src.cols == 0) return;
  if (src.data == nullptr) throw Error(what + "source is null");
  if (dst.data() == nullptr) throw Error(what + "destination buffer is null");
  if (dst.size() < need)
    throw Error(what + "destination holds " + std::to_string(dst.size()) + " bytes, a " +
                detail::dims(src.rows, src.cols) + " matrix needs " + std::to_string(need));
  detail::check_finite(src, what + "input element ", "NaN and Inf cannot be quantized");
  // Q8_0 / Q8_1 store d = amax / 127 as fp16: beyond 65504 * 127 it would be Inf.
  if (f != Format::Q8_K) {
    constexpr double kLimit = 65504.0 * 127.0;
    for (int64_t r = 0; r < src.rows; ++r)
      for (int64_t c = 0; c < src.cols; ++c)
        if (std::fabs(double(src.row(r)[c])) > kLimit) {
          char text[64];
          std::snprintf(text, sizeof text, "] = %g is beyond +-%g", double(src.row(r)[c]), kLimit);
          throw Error(what + "input element [" + std::to_string(r) + ", " + std::to_string(c) + text +
                      ", where the fp16 block scale overflows");
        }
  }
  const QuantizeActivationsFn fn = activation_kernels().select(f).fn;
  const size_t rb = row_bytes(f, src.cols);
  parallel_for(src.rows, detail::row_grain(src.cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) fn(src.row(r), dst.data() + r * rb, src.cols);
  });
}

}  // namespace lowbit
