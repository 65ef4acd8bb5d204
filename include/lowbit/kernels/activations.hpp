#pragma once
// Activation quantization: float32 rows -> Q8_0, Q8_1 or Q8_K, the partners of the
// weight formats in GGML's dot products. Unlike lowbit::quantize (a search for the
// most accurate scales, meant for weights stored once), these are the fast paths an
// engine runs on every token, and they write exactly the bytes of ggml's
// quantize_row_q8_0_ref / q8_1_ref / q8_K_ref, on every ISA.
#include <cstdint>
#include <span>

#include "lowbit/core/matrix_view.hpp"
#include "lowbit/formats/format.hpp"
#include "lowbit/kernels/kernel_table.hpp"

namespace lowbit {

// Quantizes n elements (a multiple of the block size) of one row.
using QuantizeActivationsFn = void (*)(const float* x, void* y, int64_t n);
using ActivationKernel = KernelVariant<QuantizeActivationsFn, Format>;
const KernelTable<QuantizeActivationsFn, Format>& activation_kernels();

// Quantizes a rows x cols matrix of activations into `dst` (quantized_size(f, rows,
// cols) bytes) through the best variant for this CPU. Throws Error for a format
// without an activation path (anything but Q8_0, Q8_1, Q8_K), a ragged row, a short
// or null buffer, NaN/Inf, or a value beyond the format's range (Q8_0 / Q8_1:
// 65504 * 128, their fp16 scale). The bytes do not depend on the thread count or CPU.
void quantize_activations(Format f, ConstMatrixView<float> src, std::span<std::byte> dst);

}  // namespace lowbit
