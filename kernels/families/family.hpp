#pragma once
// What every kernel family header in this folder provides, and the inputs they share.
//
// A family header (kernels/families/<family>.hpp) defines a struct with
//   Fn, Key, Variant      the function type, the dispatch key, the table's entry type
//   name, table()         the family's name and dispatch table
//   comparison            how a variant is judged against its key's scalar reference
//   check(variant)        runs the variant on the family's test inputs and returns ""
//                         or a message naming the first mismatch (case and index)
// tests/kernels/test_kernel_variants.cpp makes one GoogleTest per table entry from
// these structs, so a new variant is tested by adding its list line alone.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "lowbit/core/synthetic.hpp"
#include "lowbit/formats/blocks.hpp"
#include "lowbit/formats/format.hpp"

namespace lowbit::kernel_families {

enum class Comparison {
  // The variant's output bytes equal the reference's (decoders, quantizers: every
  // SIMD variant performs the reference's float operations in the same order).
  exact_bytes,
  // Reductions whose summation order differs: |got - want| <= tolerance * sum |w x|,
  // with want computed in float64 (the family documents its tolerance).
  relative_to_magnitude,
};

// One input shape and distribution a family runs every variant on.
struct InputPattern {
  std::string name;
  Distribution dist = Distribution::heavy_tailed;
  float scale = 1.0f;   // 1e-6 gives fp16-subnormal block scales, 3e4 the largest ones
  int64_t blocks = 4;   // blocks per row: 1 and odd counts catch tail handling
  bool zero = false;    // all-zero input
  bool signed_zeros = false;  // zero blocks of both signs, then non-negative blocks with zeros
  bool unaligned = false;  // input and output pointers off SIMD alignment (kUnalignedShift)
  bool code_book_edges = false;  // code_book_edge_values(): values at and just below IQ4_NL's decision points
};

inline std::vector<InputPattern> standard_patterns() {
  std::vector<InputPattern> p;
  const std::pair<Distribution, const char*> dists[] = {{Distribution::heavy_tailed, "heavy_tailed"},
                                                        {Distribution::gaussian, "gaussian"},
                                                        {Distribution::outliers, "outliers"}};
  for (const auto& [dist, name] : dists)
    for (float scale : {1.0f, 1e-6f, 3e4f}) {
      InputPattern q;
      q.name = std::string(name) + (scale == 1.0f ? "" : scale < 1 ? "_tiny" : "_huge");
      q.dist = dist;
      q.scale = scale;
      p.push_back(q);
    }
  for (int64_t blocks : {1, 3, 17}) {
    InputPattern q;
    q.name = "blocks" + std::to_string(blocks);
    q.blocks = blocks;
    p.push_back(q);
  }
  InputPattern zero;
  zero.name = "all_zero";
  zero.zero = true;
  p.push_back(zero);
  InputPattern zeros;
  zeros.name = "signed_zeros";
  zeros.blocks = 17;
  zeros.signed_zeros = true;
  p.push_back(zeros);
  InputPattern unaligned;
  unaligned.name = "unaligned";
  unaligned.blocks = 5;
  unaligned.unaligned = true;
  p.push_back(unaligned);
  return p;
}

// Every 32-element block starts with +-127 (alternating), so that ggml's first IQ4_NL
// trial scale is exactly 1 and the code book sees the other 31 elements as they are:
// each is a midpoint between two neighbouring IQ4_NL code values (a tie) or one to
// fifteen ulps below one, times the block's sign. There float rounding decides which
// code is nearest (the standard search's rounded cell and ggml's exact comparison
// differ there), so every variant has to round as its reference does. A whole-block
// check only: a wrong tie rule in either IQ4 look-up still passed on it, since the
// trial it touches seldom decides the stored scale.
inline std::vector<float> code_book_edge_values(int64_t rows, int64_t n) {
  std::vector<float> v(static_cast<size_t>(rows * n));
  int64_t next = 0;
  for (int64_t i = 0; i < rows * n; ++i) {
    const float sign = (i / 32) % 2 == 0 ? 1.0f : -1.0f;
    if (i % 32 == 0) {
      v[static_cast<size_t>(i)] = 127.0f * sign;
      continue;
    }
    const int64_t pair = next % 15, ulps = (next / 15) % 16;
    ++next;
    float x = 0.5f * static_cast<float>(kIq4nlValues[pair] + kIq4nlValues[pair + 1]);
    for (int64_t k = 0; k < ulps; ++k) x = std::nextafter(x, -1e9f);
    v[static_cast<size_t>(i)] = x * sign;
  }
  return v;
}

// The pattern's values for `rows` rows of n elements.
inline std::vector<float> pattern_values(const InputPattern& p, int64_t rows, int64_t n, uint64_t seed) {
  if (p.zero) return std::vector<float>(static_cast<size_t>(rows * n), 0.0f);
  if (p.code_book_edges) return code_book_edge_values(rows, n);
  std::vector<float> v = synthetic_weights(rows, n, seed, p.dist);
  for (float& x : v) x *= p.scale;
  if (p.signed_zeros) {
    // The first 256 elements of a row and every other 32 after them are zeros of
    // mixed sign (a whole all-zero block of every format); the rest are non-negative
    // with a signed zero in every fifth place. Where the references keep the first of
    // several equal extremes, the sign of the zero they keep reaches the bytes.
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < n; ++i) {
        float& x = v[static_cast<size_t>(r * n + i)];
        const bool negative = (i * 7 + r * 3) % 5 < 2;
        if (i < 256 || (i / 32) % 2 == 0 || i % 5 == 0)
          x = negative ? -0.0f : 0.0f;
        else
          x = std::fabs(x);
      }
  }
  return v;
}

// Elements per row for a pattern over format f: whole blocks (256-element rows of
// blocks for the float formats).
inline int64_t pattern_row_elems(Format f, const InputPattern& p) {
  const int block = traits(f).block_elems;
  return p.blocks * (block == 1 ? 256 : block);
}

// How far unaligned patterns place buffers past a 64-byte boundary: off every SIMD
// alignment (16, 32, 64), yet within what the block structs themselves need (their
// fp16 / fp32 fields want 2 or 4 bytes; less would be undefined behaviour in any
// C or C++ decoder, ggml's included, and UBSan says so).
inline constexpr size_t kUnalignedShift = 4;

// `bytes` bytes starting `shift` bytes past a 64-byte boundary.
class OffsetBuffer {
 public:
  OffsetBuffer(size_t bytes, size_t shift) : storage_(bytes + 64 + shift) {
    const auto addr = reinterpret_cast<uintptr_t>(storage_.data());
    start_ = (64 - addr % 64) % 64 + shift;
  }
  std::byte* data() { return storage_.data() + start_; }
  float* floats() { return reinterpret_cast<float*>(data()); }

 private:
  std::vector<std::byte> storage_;
  size_t start_ = 0;
};

// "pattern gaussian, index 17: reference 1.5, variant 1.25"
inline std::string mismatch(const std::string& pattern, int64_t index, double want, double got) {
  return "pattern " + pattern + ", index " + std::to_string(index) + ": reference " + std::to_string(want) +
         ", variant " + std::to_string(got);
}

}  // namespace lowbit::kernel_families
