#pragma once
// lowbit::cuda — decoders for every format on the device (status and conventions:
// lowbit/cuda/status.hpp). Results equal the CPU scalar reference bit for bit; f16 and
// bf16 outputs are the reference's floats rounded to nearest even.
#include <cstddef>
#include <cstdint>
#include <span>

#include "lowbit/cuda/status.hpp"
#include "lowbit/formats/format.hpp"

namespace lowbit::cuda {

enum class OutputType { f32, f16, bf16 };

struct DequantizeArguments {
  Format format = Format::Q8_0;
  const void* src = nullptr;  // device: rows x row_bytes(format, cols)
  int64_t rows = 0, cols = 0;
  OutputType output = OutputType::f32;
  void* dst = nullptr;        // device: rows x cols elements of `output`, row-major
};

// The formats the dequantize family serves (its table's keys): every lowbit format.
std::span<const Format> dequantize_formats();
Status can_implement(const DequantizeArguments& args);
inline size_t get_workspace_size(const DequantizeArguments&) { return 0; }
Status run(const DequantizeArguments& args, void* workspace = nullptr, Stream stream = nullptr);

// Host convenience (allocates device memory, copies both ways, synchronises): decodes
// host bytes into host floats. Throws lowbit::Error on a short buffer, no device or a
// failed CUDA call.
void dequantize_host(Format format, const void* src, size_t src_bytes, int64_t rows, int64_t cols, float* dst);
// The first decoder's name, kept for existing callers: dequantize_host(Format::Q8_0, ...).
void dequantize_q8_0(const void* src, size_t src_bytes, int64_t rows, int64_t cols, float* dst);

}  // namespace lowbit::cuda
