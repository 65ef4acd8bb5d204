#pragma once
// lowbit::cuda — GPU decoders (device queries: lowbit/cuda/device.hpp). Built only when CUDA is enabled (LOWBIT_CUDA).
#include <cstddef>
#include <cstdint>

namespace lowbit::cuda {

// Decodes rows x cols Q8_0 elements from host memory on the GPU and copies the
// floats back to `dst`. Throws lowbit::Error when no device is available or a CUDA
// call fails. The result equals the scalar reference bit for bit.
void dequantize_q8_0(const void* src, size_t src_bytes, int64_t rows, int64_t cols, float* dst);

}  // namespace lowbit::cuda
