#pragma once
// Whole-matrix quantize / dequantize for every block format, parallel over rows.
#include <cstddef>
#include <span>

#include "lowbit/core/matrix_view.hpp"
#include "lowbit/formats/effort.hpp"
#include "lowbit/formats/format.hpp"

namespace lowbit {

// Bytes needed for a rows x cols matrix in format f (rows stored back to back).
size_t quantized_size(Format f, int64_t rows, int64_t cols);

// Quantizes `src` (rows x cols, row-major) into `dst` with the format's quantizer at
// the given effort (lowbit/formats/effort.hpp). `importance` is empty or holds `cols` finite non-negative weights, one
// per input column, shared by every row (llama.cpp's imatrix); only its proportions
// matter (subnormal or huge vectors give the same result as rescaled ones). Throws
// Error for a column count that is not a multiple of the block size, a short or null
// buffer, NaN/Inf in the input, a finite value outside the range the format can
// represent (F16 beyond +-65504 after rounding; a block format beyond its largest
// scale times its largest level: docs/formats.md), or a bad importance vector. A
// matrix with no rows or no columns is accepted and writes nothing. The output
// depends only on the input, never on the thread count or the CPU.
void quantize(Format f, ConstMatrixView<float> src, std::span<std::byte> dst,
              std::span<const float> importance = {}, QuantizeEffort effort = QuantizeEffort::standard);

// Decodes rows x cols elements (dst's shape) of format f from `src`.
void dequantize(Format f, std::span<const std::byte> src, MatrixView<float> dst);

}  // namespace lowbit
