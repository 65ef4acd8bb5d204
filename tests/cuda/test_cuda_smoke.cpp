// GPU tests (ctest label `gpu`). Without a device they skip with a visible reason.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "lowbit/cuda/dequantize.hpp"
#include "lowbit/cuda/device.hpp"
#include "lowbit/lowbit.hpp"

namespace {

TEST(CudaQ8_0, DequantizeMatchesScalarReferenceBitForBit) {
  if (lowbit::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine: GPU test skipped";
  std::printf("device: %s\n", lowbit::cuda::device_description().c_str());
  const int64_t rows = 37, cols = 4096;
  auto w = lowbit::synthetic_weights(rows, cols, 3);
  std::vector<std::byte> q(lowbit::quantized_size(lowbit::Format::Q8_0, rows, cols));
  lowbit::quantize(lowbit::Format::Q8_0, {w.data(), rows, cols}, q);
  std::vector<float> cpu(w.size()), gpu(w.size());
  lowbit::dequantize(lowbit::Format::Q8_0, q, {cpu.data(), rows, cols});
  lowbit::cuda::dequantize_q8_0(q.data(), q.size(), rows, cols, gpu.data());
  for (size_t i = 0; i < cpu.size(); ++i)
    ASSERT_EQ(std::memcmp(&cpu[i], &gpu[i], 4), 0) << "element " << i << ": " << cpu[i] << " vs " << gpu[i];
}

TEST(CudaQ8_0, ShortBufferIsAnError) {
  std::vector<std::byte> q(10);
  std::vector<float> out(64);
  EXPECT_THROW(lowbit::cuda::dequantize_q8_0(q.data(), q.size(), 2, 32, out.data()), lowbit::Error);
}

}  // namespace
