#pragma once
// Small helpers shared by the GoogleTest suites.
#include <cstring>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/core/metrics.hpp"
#include "lowbit/formats/quantize.hpp"
#include "lowbit/kernels/registry.hpp"

namespace lowbit::test {

// The message of the lowbit::Error that f throws, or "" when it throws none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Decodes n elements of format f from hand-written block bytes.
inline std::vector<float> decode(Format f, const std::vector<uint8_t>& bytes, int64_t n) {
  std::vector<std::byte> b(bytes.size());
  std::memcpy(b.data(), bytes.data(), bytes.size());
  std::vector<float> y(static_cast<size_t>(n));
  dequantize(f, b, MatrixView<float>(y.data(), 1, n));
  return y;
}

// lowbit::quantize of a rows x cols matrix into a fresh buffer.
inline std::vector<std::byte> encode(Format f, const std::vector<float>& x, int64_t rows, int64_t cols,
                                     std::span<const float> importance = {}) {
  std::vector<std::byte> q(quantized_size(f, rows, cols));
  quantize(f, ConstMatrixView<float>(x.data(), rows, cols), q, importance);
  return q;
}

// Decodes a rows x cols matrix of format f.
inline std::vector<float> decode_matrix(Format f, const std::vector<std::byte>& q, int64_t rows, int64_t cols) {
  std::vector<float> y(static_cast<size_t>(rows * cols));
  dequantize(f, q, MatrixView<float>(y.data(), rows, cols));
  return y;
}

// Raw block bytes as the std::byte buffer the API takes.
inline std::vector<std::byte> as_bytes(const uint8_t* p, size_t n) {
  std::vector<std::byte> v(n);
  std::memcpy(v.data(), p, n);
  return v;
}

// Stores a little-endian u16 (an fp16 field of a hand-written block).
inline void put_u16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v & 0xFF);
  p[1] = static_cast<uint8_t>(v >> 8);
}

// Quantize, then decode: what the format makes of x.
// One row through f's scalar row kernels directly, bypassing lowbit::quantize's input
// checks: how the kernels themselves behave on values the API would refuse.
inline std::vector<float> kernel_round_trip(Format f, const std::vector<float>& x) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<std::byte> q(row_bytes(f, n));
  quantize_kernels().reference(f).fn(x.data(), q.data(), n, nullptr);
  std::vector<float> y(x.size());
  dequantize_kernels().reference(f).fn(q.data(), y.data(), n);
  return y;
}

inline std::vector<float> round_trip(Format f, const std::vector<float>& x, int64_t rows, int64_t cols,
                                     std::span<const float> importance = {}) {
  const auto q = encode(f, x, rows, cols, importance);
  std::vector<float> y(x.size());
  dequantize(f, q, MatrixView<float>(y.data(), rows, cols));
  return y;
}

inline double rel_rmse(const std::vector<float>& x, const std::vector<float>& y, int64_t rows, int64_t cols,
                       std::span<const float> importance = {}) {
  return relative_rmse(ConstMatrixView<float>(x.data(), rows, cols), ConstMatrixView<float>(y.data(), rows, cols),
                       importance);
}

}  // namespace lowbit::test
