// The first CUDA kernel: Q8_0 decode, one thread per element. It exists so the
// CUDA build, the device checks and the `gpu` test label have something real
// to carry; fast GEMV/GEMM kernels land beside it.
#include <cuda_runtime.h>

#include <string>

#include "lowbit/core/error.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/cuda/dequantize.hpp"
#include "lowbit/cuda/device.hpp"
#include "lowbit/formats/blocks.hpp"
#include "lowbit/formats/format.hpp"

namespace lowbit::cuda {
namespace {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw Error(std::string("CUDA ") + what + ": " + cudaGetErrorString(status));
}

__global__ void dequantize_q8_0_kernel(const block_q8_0* blocks, float* y, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const block_q8_0& b = blocks[i / QK_LEGACY];
  y[i] = fp16_to_fp32(b.d) * static_cast<float>(b.qs[i % QK_LEGACY]);
}

template <class T>
struct DeviceBuffer {
  T* ptr = nullptr;
  explicit DeviceBuffer(size_t count) { check(cudaMalloc(&ptr, count * sizeof(T)), "cudaMalloc"); }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

}  // namespace

void dequantize_q8_0(const void* src, size_t src_bytes, int64_t rows, int64_t cols, float* dst) {
  const size_t need = rows * row_bytes(Format::Q8_0, cols);
  if (src_bytes < need)
    throw Error("cuda::dequantize_q8_0: source holds " + std::to_string(src_bytes) + " bytes, " +
                std::to_string(rows) + " x " + std::to_string(cols) + " needs " + std::to_string(need));
  if (device_count() == 0) throw Error("cuda::dequantize_q8_0: no CUDA device available");
  const int64_t n = rows * cols;
  if (n == 0) return;
  DeviceBuffer<block_q8_0> d_src(need / sizeof(block_q8_0));
  DeviceBuffer<float> d_dst(static_cast<size_t>(n));
  check(cudaMemcpy(d_src.ptr, src, need, cudaMemcpyHostToDevice), "cudaMemcpy to device");
  const int threads = 256;
  const auto grid = static_cast<unsigned>((n + threads - 1) / threads);
  dequantize_q8_0_kernel<<<grid, threads>>>(d_src.ptr, d_dst.ptr, n);
  check(cudaGetLastError(), "kernel launch");
  check(cudaMemcpy(dst, d_dst.ptr, n * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy to host");
}

}  // namespace lowbit::cuda
