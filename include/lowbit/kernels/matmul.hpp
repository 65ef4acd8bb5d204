#pragma once
// Multiplying activations by a quantized weight matrix: y = x W^T, the linear layer
// of an inference engine. W is rows x cols ([out x in], GGUF's layout) in any
// format with a dot product (lowbit/kernels/dot.hpp); x is batch x cols floats;
// y is batch x rows floats.
//
// Two ways to compute it, chosen by batch size unless the caller forces one:
//  - dot:     x is quantized to the weight format's partner (Q8_0 / Q8_1 / Q8_K,
//             exactly ggml's bytes), and every output is one dot product, as ggml's
//             vec_dot path computes it. Weight rows are read once for the whole batch.
//             Memory-bound: token generation (batch 1) and small batches.
//  - dequant: panels of kPanelRows weight rows are decoded to f32 and multiplied by x
//             with OpenBLAS SGEMM (single-threaded per panel). Compute-bound: prompt
//             processing. x stays in f32, so this path is the more accurate one.
// Rows are split over threads in fixed chunks, so y's bytes never depend on the
// thread count; they do depend on the path (the activations differ) and, for the dot
// path, on the variant the CPU runs (float accumulation order, within the dot
// family's documented tolerance).
#include <cstddef>
#include <cstdint>
#include <span>

#include "lowbit/core/matrix_view.hpp"
#include "lowbit/formats/format.hpp"

namespace lowbit {

enum class MatmulPath { automatic, dot, dequant };

struct MatmulOptions {
  MatmulPath path = MatmulPath::automatic;
};

// Batches up to this size take the dot path when the path is automatic.
inline constexpr int64_t kMatmulDotMaxBatch = 8;

// y = x W^T. Throws Error naming the problem for a format without a dot product, a
// row length that is not a whole number of blocks, a weight buffer shorter than
// rows x cols needs, shapes that do not match (x.cols != cols, y not batch x rows),
// a row stride below the row length, null buffers, or activations the partner
// format cannot hold (NaN/Inf; for Q8_0 / Q8_1 magnitudes beyond 65504 * 127).
void matmul(Format f, std::span<const std::byte> weights, int64_t rows, int64_t cols, ConstMatrixView<float> x,
            MatrixView<float> y, const MatmulOptions& options = {});

// y = W x for one activation vector: matmul with a batch of one.
void gemv(Format f, std::span<const std::byte> weights, int64_t rows, int64_t cols, std::span<const float> x,
          std::span<float> y);

}  // namespace lowbit
