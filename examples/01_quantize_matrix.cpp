// Example 1: quantize a weight matrix to GGML block formats with an importance
// vector, decode it, and measure what was lost.
//
//   01_quantize_matrix
//
// The bytes are GGML's: they can go into a GGUF tensor as they are (example 2 reads
// such a file).
#include <lowbit/lowbit.hpp>

#include <cstdio>
#include <vector>

int main() {
  const int64_t rows = 256, cols = 1024;  // [out_features x in_features]
  std::vector<float> w = lowbit::synthetic_weights(rows, cols, /*seed=*/42);
  std::vector<float> imp = lowbit::synthetic_importance(cols, /*seed=*/42);

  for (lowbit::Format f : {lowbit::Format::Q8_0, lowbit::Format::Q4_K, lowbit::Format::Q2_K}) {
    std::vector<std::byte> blocks(lowbit::quantized_size(f, rows, cols));
    lowbit::quantize(f, {w.data(), rows, cols}, blocks, imp);
    std::vector<float> back(w.size());
    lowbit::dequantize(f, blocks, {back.data(), rows, cols});
    std::printf("%-5s %6.3f bits/weight  %8zu bytes  rel. RMSE %.4f  weighted %.4f\n",
                lowbit::traits(f).name.data(), lowbit::traits(f).bits_per_weight(), blocks.size(),
                lowbit::relative_rmse({w.data(), rows, cols}, {back.data(), rows, cols}),
                lowbit::relative_rmse({w.data(), rows, cols}, {back.data(), rows, cols}, imp));
  }
}
