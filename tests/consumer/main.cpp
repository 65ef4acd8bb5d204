// A tiny engine-side program: quantize a matrix to Q8_0 through the installed
// package and check that it decodes close to the input.
#include <lowbit/lowbit.hpp>

#include <cstdio>
#include <vector>

int main() {
  const int64_t rows = 4, cols = 64;
  std::vector<float> w = lowbit::synthetic_weights(rows, cols, 7, lowbit::Distribution::gaussian);
  std::vector<std::byte> q(lowbit::quantized_size(lowbit::Format::Q8_0, rows, cols));
  lowbit::quantize(lowbit::Format::Q8_0, {w.data(), rows, cols}, q);
  std::vector<float> back(w.size());
  lowbit::dequantize(lowbit::Format::Q8_0, q, {back.data(), rows, cols});
  const double err = lowbit::relative_rmse({w.data(), rows, cols}, {back.data(), rows, cols});
  std::printf("consumer: Q8_0 relative RMSE %.5f (lowbit %s)\n", err, lowbit::kVersionString);
  return err < 0.01 ? 0 : 1;
}
