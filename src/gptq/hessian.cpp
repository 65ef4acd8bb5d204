#include "lowbit/gptq/hessian.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <span>

#include "common/checks.hpp"
#include "gptq/blas.hpp"
#include "io/file_io.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/core/parallel.hpp"

namespace lowbit {
namespace {

constexpr char kMagic[8] = {'L', 'B', 'H', 'E', 'S', 'S', '0', '1'};

}  // namespace

void check_memory_fits(double bytes, const std::string& what) {
  const long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return;  // unknown: let the allocator decide
  const double available = static_cast<double>(pages) * static_cast<double>(page);
  if (bytes > available)
    throw Error(what + " needs " + std::to_string(static_cast<long long>(bytes / (1 << 20))) + " MiB but only " +
                std::to_string(static_cast<long long>(available / (1 << 20))) + " MiB of memory is available");
}

HessianAccumulator::HessianAccumulator(int64_t cols) : cols_(cols) {
  if (cols <= 0 || cols > (1 << 20)) throw Error("HessianAccumulator: column count " + std::to_string(cols) + " is out of range");
  check_memory_fits(4.0 * cols * cols, "the Hessian of a layer with " + std::to_string(cols) + " inputs");
  h_.assign(static_cast<size_t>(cols * cols), 0.0f);
}

void HessianAccumulator::add_checked(const float* x, int64_t tokens, int64_t stride) {
  // Running average over tokens: H <- H * n / (n + t) + (2 / (n + t)) X^T X.
  const double n_new = static_cast<double>(tokens_) + static_cast<double>(tokens);
  const float beta = static_cast<float>(static_cast<double>(tokens_) / n_new);
  const float alpha = static_cast<float>(2.0 / n_new);
  cblas_ssyrk(LowbitRowMajor, LowbitUpper, LowbitTrans, static_cast<int>(cols_), static_cast<int>(tokens), alpha, x,
              static_cast<int>(stride), beta, h_.data(), static_cast<int>(cols_));
  tokens_ += tokens;
}

void HessianAccumulator::add(ConstMatrixView<float> x) {
  if (x.cols != cols_)
    throw Error("Hessian batch " + std::to_string(batches_) + ": activations have " + std::to_string(x.cols) +
                " columns, the layer has " + std::to_string(cols_));
  if (x.rows <= 0) return;
  if (x.data == nullptr || x.stride < x.cols) throw Error("Hessian batch " + std::to_string(batches_) + ": bad activation buffer");
  detail::check_finite(x, "Hessian batch " + std::to_string(batches_) + ": activation ",
                       "batch rejected, accumulator unchanged");
  add_checked(x.data, x.rows, x.stride);
  ++batches_;
}

void HessianAccumulator::add(ActivationType type, const uint16_t* data, int64_t tokens, int64_t stride) {
  if (type == ActivationType::f32) throw Error("HessianAccumulator::add: f32 activations go through the float overload");
  if (tokens <= 0) return;
  if (data == nullptr || stride < cols_) throw Error("Hessian batch " + std::to_string(batches_) + ": bad activation buffer");
  // Convert everything first so a bad value leaves the accumulator untouched.
  std::vector<float> x(static_cast<size_t>(tokens * cols_));
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t c = 0; c < cols_; ++c) {
      const uint16_t v = data[t * stride + c];
      x[t * cols_ + c] = type == ActivationType::f16 ? fp16_to_fp32(v) : bf16_to_fp32(v);
    }
  add(ConstMatrixView<float>(x.data(), tokens, cols_));
}

void HessianAccumulator::merge(const HessianAccumulator& other) {
  if (other.cols_ != cols_)
    throw Error("HessianAccumulator::merge: " + std::to_string(other.cols_) + " columns into " + std::to_string(cols_));
  const double n = static_cast<double>(tokens_) + static_cast<double>(other.tokens_);
  if (n == 0) return;
  const auto a = static_cast<float>(tokens_ / n), b = static_cast<float>(other.tokens_ / n);
  for (int64_t i = 0; i < cols_; ++i)
    for (int64_t j = i; j < cols_; ++j) h_[i * cols_ + j] = a * h_[i * cols_ + j] + b * other.h_[i * cols_ + j];
  tokens_ += other.tokens_;
  batches_ += other.batches_;
}

std::vector<float> HessianAccumulator::matrix() const {
  std::vector<float> full(h_.size());
  for (int64_t i = 0; i < cols_; ++i)
    for (int64_t j = i; j < cols_; ++j) full[i * cols_ + j] = full[j * cols_ + i] = h_[i * cols_ + j];
  return full;
}

std::vector<float> HessianAccumulator::importance() const {
  std::vector<float> imp(static_cast<size_t>(cols_));
  for (int64_t i = 0; i < cols_; ++i) imp[i] = 0.5f * h_[i * cols_ + i];
  return imp;
}

void HessianAccumulator::save(const std::string& path) const {
  // Atomically, like every lowbit output (io/file_io.hpp): never a truncated file, the
  // temporary removed on errors and on SIGINT/SIGTERM/SIGHUP.
  const uint64_t header[3] = {static_cast<uint64_t>(cols_), static_cast<uint64_t>(tokens_),
                              static_cast<uint64_t>(batches_)};
  io_detail::write_atomically(path, "Hessian file '" + path + "'", [&](io_detail::FileSink& out) {
    out.put(kMagic, sizeof kMagic);
    out.put(header, sizeof header);
    out.put(h_.data(), h_.size() * sizeof(float));
  });
}

HessianAccumulator HessianAccumulator::load(const std::string& path) {
  // Mapped: a directory, device or FIFO is refused by name before anything is read.
  const io_detail::MappedFile file = io_detail::MappedFile::open(path, "Hessian file '" + path + "'");
  const std::span<const std::byte> bytes = file.bytes();
  const uint64_t size = bytes.size();
  uint64_t header[3];
  if (size < sizeof kMagic + sizeof header || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    throw Error("'" + path + "' is not a lowbit Hessian file (bad magic at offset 0)");
  std::memcpy(header, bytes.data() + sizeof kMagic, sizeof header);
  const uint64_t cols = header[0];
  if (cols == 0 || cols > (1u << 20) || size != sizeof kMagic + sizeof header + cols * cols * sizeof(float))
    throw Error("Hessian file '" + path + "': " + std::to_string(cols) + " columns at offset 8 do not match the file size " +
                std::to_string(size));
  HessianAccumulator h(static_cast<int64_t>(cols));
  h.tokens_ = static_cast<int64_t>(header[1]);
  h.batches_ = static_cast<int64_t>(header[2]);
  std::memcpy(h.h_.data(), bytes.data() + sizeof kMagic + sizeof header, h.h_.size() * sizeof(float));
  for (size_t i = 0; i < h.h_.size(); ++i)
    if (!std::isfinite(h.h_[i]))
      throw Error("Hessian file '" + path + "': entry " + std::to_string(i) + " at offset " +
                  std::to_string(32 + 4 * i) + " is not finite");
  return h;
}

}  // namespace lowbit
