#pragma once
// Deterministic synthetic data shaped like LLM weights, for the demo, the tests
// and the benchmarks. The same seed gives the same floats on every machine that
// has IEEE float and a correctly rounded sqrt (log/cos come from libm).
#include <cstdint>
#include <vector>

namespace lowbit {

enum class Distribution {
  heavy_tailed,  // Student-t (5 degrees of freedom) rows, plus a few outlier columns
  gaussian,      // N(0, 1)
  outliers,      // N(0, 1) with 0.2% of elements 20x larger
};

// rows x cols, row-major. heavy_tailed is the demo's default weight matrix:
// every column has its own scale (log-normal), and 1 in 256 columns is 8x larger,
// like the outlier input channels of real transformer layers.
std::vector<float> synthetic_weights(int64_t rows, int64_t cols, uint64_t seed,
                                     Distribution dist = Distribution::heavy_tailed);

// An importance vector matching synthetic_weights(..., seed): the mean squared
// activation per input column (llama.cpp imatrix semantics), log-normal, with the
// outlier columns 30x more important.
std::vector<float> synthetic_importance(int64_t cols, uint64_t seed);

// Calibration activations [tokens x cols] shaped like an LLM layer's inputs:
// channels correlated through a shared low-rank component (16 latent factors plus
// independent noise), and 1 in 64 channels 10x to 100x larger than the rest
// (the "massive activation" channels of real transformers).
std::vector<float> synthetic_activations(int64_t tokens, int64_t cols, uint64_t seed);

}  // namespace lowbit
