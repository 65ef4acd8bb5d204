#include "lowbit/core/synthetic.hpp"

#include <cmath>

#include "lowbit/core/error.hpp"

namespace lowbit {
namespace {

// SplitMix64: tiny, fast, and identical everywhere (unlike std:: distributions).
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>((next() >> 11) + 1) * 0x1.0p-53; }  // (0, 1]
  double normal() {
    const double u1 = uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
};

bool is_outlier_column(int64_t c, uint64_t seed) { return ((c * 2654435761u) ^ seed) % 256 == 17; }

void check(int64_t rows, int64_t cols) {
  if (rows < 0 || cols < 0)
    throw Error("synthetic data: negative shape " + std::to_string(rows) + " x " + std::to_string(cols));
}

}  // namespace

std::vector<float> synthetic_weights(int64_t rows, int64_t cols, uint64_t seed, Distribution dist) {
  check(rows, cols);
  std::vector<float> w(static_cast<size_t>(rows * cols));
  Rng col_rng{seed ^ 0x5eedc01u};
  std::vector<double> col_scale(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c) {
    col_scale[c] = 0.02 * std::exp(0.3 * col_rng.normal());
    if (is_outlier_column(c, seed)) col_scale[c] *= 8.0;
  }
  Rng rng{seed};
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      double v = rng.normal();
      switch (dist) {
        case Distribution::heavy_tailed: {
          double chi2 = 0;
          for (int k = 0; k < 5; ++k) {
            const double g = rng.normal();
            chi2 += g * g;
          }
          v = v / std::sqrt(chi2 / 5.0) * col_scale[c];
          break;
        }
        case Distribution::gaussian:
          break;
        case Distribution::outliers:
          if (rng.next() % 500 == 0) v *= 20.0;
          break;
      }
      w[static_cast<size_t>(r * cols + c)] = static_cast<float>(v);
    }
  }
  return w;
}

std::vector<float> synthetic_importance(int64_t cols, uint64_t seed) {
  check(0, cols);
  std::vector<float> imp(static_cast<size_t>(cols));
  Rng rng{seed ^ 0x1a9057a7ull};
  for (int64_t c = 0; c < cols; ++c) {
    double v = std::exp(1.0 * rng.normal());
    if (is_outlier_column(c, seed)) v *= 30.0;
    imp[c] = static_cast<float>(v);
  }
  return imp;
}

std::vector<float> synthetic_activations(int64_t tokens, int64_t cols, uint64_t seed) {
  check(tokens, cols);
  constexpr int kFactors = 16;
  Rng setup{seed ^ 0xac71u};
  std::vector<double> mix(static_cast<size_t>(kFactors * cols)), scale(static_cast<size_t>(cols));
  for (auto& m : mix) m = setup.normal() * 0.5;
  for (int64_t c = 0; c < cols; ++c) {
    scale[c] = std::exp(0.5 * setup.normal());
    if (setup.next() % 64 == 0) scale[c] *= 10.0 * std::pow(10.0, setup.uniform());  // 10x .. 100x
  }
  std::vector<float> x(static_cast<size_t>(tokens * cols));
  Rng rng{seed ^ 0x70c3e5u};
  double z[kFactors];
  for (int64_t t = 0; t < tokens; ++t) {
    for (double& v : z) v = rng.normal();
    for (int64_t c = 0; c < cols; ++c) {
      double v = rng.normal();
      for (int k = 0; k < kFactors; ++k) v += z[k] * mix[k * cols + c];
      x[static_cast<size_t>(t * cols + c)] = static_cast<float>(v * scale[c]);
    }
  }
  return x;
}

}  // namespace lowbit
