// Prints one FNV-1a digest per (family, format) of what the scalar references write:
// every quantizer (with and without importance), every activation quantizer, every
// decoder and every dot product (its float results), on inputs made with integer arithmetic and correctly rounded float
// operations only (no libm, whose last bits may differ between machines). The neon
// ctest runs it on the host and under qemu-aarch64 and requires the same lines, so a
// model file quantized on an Arm machine has the bytes of one quantized on x86.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <vector>

#include "lowbit/formats/format.hpp"
#include "lowbit/kernels/activations.hpp"
#include "lowbit/kernels/dot.hpp"
#include "lowbit/kernels/registry.hpp"

namespace {

uint64_t fnv1a(const void* p, size_t n, uint64_t h = 0xcbf29ce484222325ull) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

struct SplitMix {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float uniform() { return static_cast<float>(next() >> 40) * 0x1.0p-24f; }  // [0, 1), exact
};

// Rows with the features the quantizers branch on: near-gaussian bulk (a sum of
// uniforms), heavy tails (a ratio), outliers, exact zeros, sign changes; then the
// same at the scales that give fp16-subnormal and saturated block scales.
std::vector<float> inputs(int64_t n) {
  SplitMix rng{12345};
  std::vector<float> x;
  for (float scale : {1.0f, 1e-6f, 3e4f})
    for (int64_t i = 0; i < n; ++i) {
      float v = (rng.uniform() + rng.uniform() + rng.uniform() - 1.5f);
      if (rng.next() % 16 == 0) v = v / (rng.uniform() + 0.01f);
      if (rng.next() % 97 == 0) v *= 50.0f;
      if (rng.next() % 31 == 0) v = 0.0f;
      x.push_back(v * scale);
    }
  return x;
}

void print(const char* family, std::string_view format, uint64_t h) {
  std::printf("%s %.*s %016llx\n", family, static_cast<int>(format.size()), format.data(),
              static_cast<unsigned long long>(h));
}

}  // namespace

int main() {
  using namespace lowbit;
  const int64_t n = 17 * 256;  // a multiple of every block size
  const std::vector<float> x = inputs(n);
  const int64_t rows = static_cast<int64_t>(x.size()) / n;
  std::vector<float> importance(static_cast<size_t>(n));
  SplitMix rng{777};
  for (float& w : importance) w = rng.uniform() * rng.uniform() * 4.0f;
  for (const FormatTraits& t : all_formats()) {
    const size_t bytes = row_bytes(t.format, n);
    std::vector<std::byte> q(bytes);
    std::vector<float> y(static_cast<size_t>(n));
    uint64_t hq = fnv1a(nullptr, 0), hqi = hq, hd = hq;
    for (int64_t r = 0; r < rows; ++r) {
      quantize_kernels().reference(t.format).fn(x.data() + r * n, q.data(), n, nullptr);
      hq = fnv1a(q.data(), bytes, hq);
      dequantize_kernels().reference(t.format).fn(q.data(), y.data(), n);
      hd = fnv1a(y.data(), y.size() * 4, hd);
      quantize_kernels().reference(t.format).fn(x.data() + r * n, q.data(), n, importance.data());
      hqi = fnv1a(q.data(), bytes, hqi);
    }
    print("quantize", t.name, hq);
    print("quantize+importance", t.name, hqi);
    print("dequantize", t.name, hd);
  }
  // Efforts with their own scalar reference (the K-quants' fast = ggml's algorithm):
  // the same bytes on every machine too.
  for (const FormatTraits& t : all_formats()) {
    const QuantizeKernel& fast = quantize_kernels().reference(QuantizeKey{t.format, QuantizeEffort::fast});
    if (fast.fn == quantize_kernels().reference(t.format).fn) continue;
    std::vector<std::byte> q(row_bytes(t.format, n));
    uint64_t hq = fnv1a(nullptr, 0), hqi = hq;
    for (int64_t r = 0; r < rows; ++r) {
      fast.fn(x.data() + r * n, q.data(), n, nullptr);
      hq = fnv1a(q.data(), q.size(), hq);
      fast.fn(x.data() + r * n, q.data(), n, importance.data());
      hqi = fnv1a(q.data(), q.size(), hqi);
    }
    print("quantize:fast", t.name, hq);
    print("quantize+importance:fast", t.name, hqi);
  }
  for (const ActivationKernel& k : activation_kernels().variants()) {
    if (!k.is_reference()) continue;
    std::vector<std::byte> q(row_bytes(k.key, n));
    uint64_t h = fnv1a(nullptr, 0);
    for (int64_t r = 0; r < rows; ++r) {
      k.fn(x.data() + r * n, q.data(), n);
      h = fnv1a(q.data(), q.size(), h);
    }
    print("quantize_activations", traits(k.key).name, h);
  }
  // Dot products: the unit and the tiny row's weights (the quantizer's bytes) times the
  // other one as activations in the partner format. Not the huge row: its F16 weights
  // and Q8 activation scales overflow to Inf, and the NaN an Inf - Inf makes has a
  // different sign bit on x86 (negative default NaN) than on AArch64 (positive).
  for (const FormatTraits& t : all_formats()) {
    if (t.activation_only) continue;
    const Format af = dot_activation_format(t.format);
    std::vector<std::byte> w(row_bytes(t.format, n)), a(af == Format::F32 ? n * 4 : row_bytes(af, n));
    uint64_t h = fnv1a(nullptr, 0);
    for (int64_t r = 0; r < 2; ++r) {
      const float* next = x.data() + (1 - r) * n;
      quantize_kernels().reference(t.format).fn(x.data() + r * n, w.data(), n, nullptr);
      if (af == Format::F32) std::memcpy(a.data(), next, a.size());
      else activation_kernels().reference(af).fn(next, a.data(), n);
      const float d = dot_kernels().reference(t.format).fn(w.data(), a.data(), n);
      h = fnv1a(&d, sizeof d, h);
    }
    print("dot", t.name, h);
  }
  return 0;
}
