// Dequantize family: every format to f32 / f16 / bf16. One thread per element through
// kernels/common/block_levels.hpp, the layout the CPU tests check; compiled with
// --fmad=false so scale * level + offset rounds twice, as the scalar reference does.
#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "common/block_levels.hpp"
#include "cuda/common.cuh"
#include "lowbit/core/error.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/cuda/dequantize.hpp"
#include "lowbit/cuda/device.hpp"

namespace lowbit::cuda {
namespace {

using kernels::BlockLevels;

template <OutputType O>
__device__ __forceinline__ void store(void* dst, int64_t i, float v) {
  if constexpr (O == OutputType::f32) static_cast<float*>(dst)[i] = v;
  if constexpr (O == OutputType::f16) static_cast<uint16_t*>(dst)[i] = fp32_to_fp16(v);
  if constexpr (O == OutputType::bf16) static_cast<uint16_t*>(dst)[i] = fp32_to_bf16(v);
}

template <Format F, OutputType O>
__global__ void dequantize_kernel(const void* src, int64_t rows, int64_t cols, void* dst) {
  using Block = typename BlockLevels<F>::Block;
  const int64_t n = rows * cols;
  const int64_t blocks_per_row = cols / BlockLevels<F>::elems;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    const Block* row = static_cast<const Block*>(src) + r * blocks_per_row;
    store<O>(dst, i, kernels::decode_element<F>(row, c));
  }
}

template <OutputType O>
__global__ void float_kernel(Format f, const void* src, int64_t n, void* dst) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v;
    if (f == Format::F32) v = static_cast<const float*>(src)[i];
    else if (f == Format::F16) v = fp16_to_fp32(static_cast<const uint16_t*>(src)[i]);
    else v = bf16_to_fp32(static_cast<const uint16_t*>(src)[i]);
    store<O>(dst, i, v);
  }
}

using Launch = void (*)(const DequantizeArguments&, cudaStream_t);

unsigned grid_for(int64_t n) {
  const int64_t b = (n + 255) / 256;
  return static_cast<unsigned>(b < 65536 ? (b > 0 ? b : 1) : 65536);
}

template <Format F>
void launch_block(const DequantizeArguments& a, cudaStream_t s) {
  const unsigned g = grid_for(a.rows * a.cols);
  switch (a.output) {
    case OutputType::f32: dequantize_kernel<F, OutputType::f32><<<g, 256, 0, s>>>(a.src, a.rows, a.cols, a.dst); break;
    case OutputType::f16: dequantize_kernel<F, OutputType::f16><<<g, 256, 0, s>>>(a.src, a.rows, a.cols, a.dst); break;
    case OutputType::bf16: dequantize_kernel<F, OutputType::bf16><<<g, 256, 0, s>>>(a.src, a.rows, a.cols, a.dst); break;
  }
}

void launch_float(const DequantizeArguments& a, cudaStream_t s) {
  const int64_t n = a.rows * a.cols;
  const unsigned g = grid_for(n);
  switch (a.output) {
    case OutputType::f32: float_kernel<OutputType::f32><<<g, 256, 0, s>>>(a.format, a.src, n, a.dst); break;
    case OutputType::f16: float_kernel<OutputType::f16><<<g, 256, 0, s>>>(a.format, a.src, n, a.dst); break;
    case OutputType::bf16: float_kernel<OutputType::bf16><<<g, 256, 0, s>>>(a.format, a.src, n, a.dst); break;
  }
}

constexpr detail::Entry<Format, Launch> kTable[] = {
    {Format::F32, launch_float},
    {Format::F16, launch_float},
    {Format::BF16, launch_float},
    {Format::Q4_0, launch_block<Format::Q4_0>},
    {Format::Q4_1, launch_block<Format::Q4_1>},
    {Format::Q5_0, launch_block<Format::Q5_0>},
    {Format::Q5_1, launch_block<Format::Q5_1>},
    {Format::Q8_0, launch_block<Format::Q8_0>},
    {Format::Q8_1, launch_block<Format::Q8_1>},
    {Format::Q2_K, launch_block<Format::Q2_K>},
    {Format::Q3_K, launch_block<Format::Q3_K>},
    {Format::Q4_K, launch_block<Format::Q4_K>},
    {Format::Q5_K, launch_block<Format::Q5_K>},
    {Format::Q6_K, launch_block<Format::Q6_K>},
    {Format::Q8_K, launch_block<Format::Q8_K>},
    {Format::IQ4_NL, launch_block<Format::IQ4_NL>},
    {Format::IQ4_XS, launch_block<Format::IQ4_XS>},
};

const std::vector<Format>& keys() {
  static const std::vector<Format> k = [] {
    std::vector<Format> v;
    for (const auto& e : kTable) v.push_back(e.key);
    return v;
  }();
  return k;
}

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw Error(std::string("CUDA ") + what + ": " + cudaGetErrorString(status));
}

template <class T>
struct DeviceBuffer {
  T* ptr = nullptr;
  explicit DeviceBuffer(size_t count) { check(cudaMalloc(&ptr, count * sizeof(T) + 1), "cudaMalloc"); }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

}  // namespace

std::span<const Format> dequantize_formats() { return keys(); }

Status can_implement(const DequantizeArguments& a) {
  const Launch* l = detail::find(kTable, a.format);
  if (l == nullptr) return Status::not_supported;
  if (a.rows < 0 || a.cols < 0 || (a.rows * a.cols > 0 && (a.src == nullptr || a.dst == nullptr)))
    return Status::invalid_problem;
  if (a.cols % traits(a.format).block_elems != 0) return Status::invalid_problem;
  // Block fields are read as 16-bit values; outputs are written whole.
  if (!detail::aligned(a.src, 2) || !detail::aligned(a.dst, a.output == OutputType::f32 ? 4 : 2))
    return Status::misaligned_operand;
  if (a.format == Format::F32 && !detail::aligned(a.src, 4)) return Status::misaligned_operand;
  if (a.format == Format::Q8_K && !detail::aligned(a.src, 4)) return Status::misaligned_operand;
  return Status::success;
}

Status run(const DequantizeArguments& a, void*, Stream stream) {
  const Status s = can_implement(a);
  if (s != Status::success) return s;
  if (a.rows * a.cols == 0) return Status::success;
  (*detail::find(kTable, a.format))(a, stream);
  return detail::launch_status();
}

void dequantize_host(Format format, const void* src, size_t src_bytes, int64_t rows, int64_t cols, float* dst) {
  const std::string name = "cuda::dequantize_host(" + std::string(traits(format).name) + ")";
  if (rows < 0 || cols < 0) throw Error(name + ": negative shape " + std::to_string(rows) + " x " + std::to_string(cols));
  const size_t need = static_cast<size_t>(rows) * row_bytes(format, cols);
  if (src_bytes < need)
    throw Error(name + ": source holds " + std::to_string(src_bytes) + " bytes, " + std::to_string(rows) + " x " +
                std::to_string(cols) + " needs " + std::to_string(need));
  if (device_count() == 0) throw Error(name + ": no CUDA device available");
  const int64_t n = rows * cols;
  if (n == 0) return;
  DeviceBuffer<std::byte> d_src(need);
  DeviceBuffer<float> d_dst(static_cast<size_t>(n));
  check(cudaMemcpy(d_src.ptr, src, need, cudaMemcpyHostToDevice), "cudaMemcpy to device");
  DequantizeArguments a{format, d_src.ptr, rows, cols, OutputType::f32, d_dst.ptr};
  throw_if_error(run(a), name);
  check(cudaMemcpy(dst, d_dst.ptr, n * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy to host");
}

void dequantize_q8_0(const void* src, size_t src_bytes, int64_t rows, int64_t cols, float* dst) {
  dequantize_host(Format::Q8_0, src, src_bytes, rows, cols, dst);
}

}  // namespace lowbit::cuda
