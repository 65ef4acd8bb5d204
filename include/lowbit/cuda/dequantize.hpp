#pragma once
// lowbit::cuda — GPU kernels. Built only when CUDA is enabled (LOWBIT_CUDA).
#include <cstddef>
#include <cstdint>
#include <string>

namespace lowbit::cuda {

// Number of usable CUDA devices; 0 when there is no GPU or no driver.
int device_count();
// Name and compute capability of device 0, e.g. "NVIDIA H100 (sm_90)"; empty when none.
std::string device_description();

// Decodes rows x cols Q8_0 elements from host memory on the GPU and copies the
// floats back to `dst`. Throws lowbit::Error when no device is available or a CUDA
// call fails. The result equals the scalar reference bit for bit.
void dequantize_q8_0(const void* src, size_t src_bytes, int64_t rows, int64_t cols, float* dst);

}  // namespace lowbit::cuda
