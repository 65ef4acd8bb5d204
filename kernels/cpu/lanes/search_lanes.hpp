#pragma once
// Helpers shared by the searches that run a scalar reference's float operations with
// one sub-block (or block) per vector lane: GCC vector types, the reference's
// std::min/max and rounding semantics lane by lane, masks, and loads and stores
// that never write a vector lane by lane.
//
// The including file (one per ISA) defines, before including this header:
//   V, Vi    float and int32 GCC vector types of 8 lanes
//   Vd, Vdi  double and int64 GCC vector types of 8 lanes
#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace lowbit::kernels {
namespace {

// Helpers on vectors wider than the ISA's registers are always inlined: an
// out-of-line call would pass them through memory.
#define LOWBIT_LANES_INLINE inline __attribute__((always_inline))
#define LOWBIT_LANES_INLINE_LAMBDA __attribute__((always_inline))


// Sixteen lanes (one per 16-element sub-block of a 256-element super-block): GCC
// splits these into two (or, for the doubles, four) registers where the ISA's are
// narrower.
typedef float W __attribute__((vector_size(64)));
typedef int32_t Wi __attribute__((vector_size(64)));
typedef double Wd __attribute__((vector_size(128)));
typedef int64_t Wdi __attribute__((vector_size(128)));

template <class T>
constexpr int lanes_of = sizeof(T) / sizeof(T{}[0]);

// A scalar operand of a vector operation is broadcast (one vbroadcastss / dup); the
// element-by-element fill this replaced compiled to chains of vpinsrd that GCC left in
// inner loops (four per element and trial in ggml's Q4_1 imatrix search). v - 0 is v
// for every value, -0 and NaN included, and folds away.
template <class T, class E>
LOWBIT_LANES_INLINE T splat_as(E v) {
  using Element = std::remove_cvref_t<decltype(T{}[0])>;
  return static_cast<Element>(v) - T{};
}
// std::min / std::max as the reference calls them: min(a, b) = b < a ? b : a,
// max(a, b) = a < b ? b : a (which operand a NaN or a tie returns matters).
template <class T>
LOWBIT_LANES_INLINE T vmin(const T& a, const T& b) {
  return b < a ? b : a;
}
template <class T>
LOWBIT_LANES_INLINE T vmax(const T& a, const T& b) {
  return a < b ? b : a;
}
template <class T>
LOWBIT_LANES_INLINE T vclamp(const T& v, float lo, float hi) {
  return vmin(vmax(v, splat_as<T>(lo)), splat_as<T>(hi));
}
// round_even of scalar_math.hpp, always inlined.
template <class T>
LOWBIT_LANES_INLINE T vround(const T& v) {
  return (v + 12582912.0f) - 12582912.0f;
}
// op applied to the vectors one native register R at a time (a GCC vector may span
// several): for the few operations GCC's vector extensions do not express.
template <class R, class T, class Op, class... Args>
LOWBIT_LANES_INLINE T per_register(const Op& op, const Args&... args) {
  static_assert(sizeof(T) % sizeof(R) == 0);
  T r;
  for (unsigned k = 0; k < sizeof(T); k += sizeof(R)) {
    auto part = [k](const T& v) LOWBIT_LANES_INLINE_LAMBDA {
      R p;
      std::memcpy(&p, reinterpret_cast<const char*>(&v) + k, sizeof(R));
      return p;
    };
    const R out = op(part(args)...);
    std::memcpy(reinterpret_cast<char*>(&r) + k, &out, sizeof(R));
  }
  return r;
}

// a * b + c rounded once, lane by lane: std::fma of the reference. The library is
// built with -ffp-contract=off, so GCC never fuses a product and a sum by itself;
// this is the ISA's fused multiply-add.
template <class T>
LOWBIT_LANES_INLINE T vfma(const T& a, const T& b, const T& c) {
#if defined(__AVX512F__)
  if constexpr (sizeof(T) % 64 == 0)
    return per_register<__m512, T>([](__m512 x, __m512 y, __m512 z) { return _mm512_fmadd_ps(x, y, z); }, a, b, c);
#endif
#if defined(__FMA__)
  return per_register<__m256, T>([](__m256 x, __m256 y, __m256 z) { return _mm256_fmadd_ps(x, y, z); }, a, b, c);
#elif defined(__aarch64__)
  return per_register<float32x4_t, T>([](float32x4_t x, float32x4_t y, float32x4_t z) { return vfmaq_f32(z, x, y); },
                                      a, b, c);
#else
#error "search_lanes.hpp's vfma needs FMA (x86) or AArch64"
#endif
}
// std::sqrt lane by lane (IEEE, correctly rounded on every ISA).
template <class T>
LOWBIT_LANES_INLINE T vsqrt(const T& a) {
#if defined(__AVX512F__)
  if constexpr (sizeof(T) % 64 == 0) return per_register<__m512, T>([](__m512 x) { return _mm512_sqrt_ps(x); }, a);
#endif
#if defined(__AVX__)
  return per_register<__m256, T>([](__m256 x) { return _mm256_sqrt_ps(x); }, a);
#elif defined(__aarch64__)
  return per_register<float32x4_t, T>([](float32x4_t x) { return vsqrtq_f32(x); }, a);
#else
#error "search_lanes.hpp's vsqrt needs AVX (x86) or AArch64"
#endif
}
template <class T>
LOWBIT_LANES_INLINE T vfma(const T& a, const T& b, float c) {
  return vfma(a, b, splat_as<T>(c));
}
template <class T>
LOWBIT_LANES_INLINE T vabs(const T& v) {
  typedef int32_t I __attribute__((vector_size(sizeof(T))));
  return reinterpret_cast<T>(reinterpret_cast<I>(v) & 0x7fffffff);
}
template <class M>
LOWBIT_LANES_INLINE bool any(const M& m) {
  long r = 0;
  for (int k = 0; k < lanes_of<M>; ++k) r |= m[k];
  return r != 0;
}

// Lanes (each in the range of T) to one T each.
template <class T, class M>
LOWBIT_LANES_INLINE void store_narrow(const M& v, T* out) {
  typedef T B __attribute__((vector_size(lanes_of<M> * sizeof(T))));
  const B b = __builtin_convertvector(v, B);
  std::memcpy(out, &b, sizeof b);
}

// Vectors are only ever filled from memory as a whole, never lane by lane: GCC 12's
// SLP vectorizer miscompiled lane stores into the member arrays below (-O3, 8-lane
// vectors; found by the byte-identity test).
template <class M, class T>
LOWBIT_LANES_INLINE M load_widened(const T* in) {
  typedef T B __attribute__((vector_size(lanes_of<M> * sizeof(T))));
  B b;
  std::memcpy(&b, in, sizeof b);
  return __builtin_convertvector(b, M);
}
template <class T>
LOWBIT_LANES_INLINE T load_vector(const decltype(T{}[0] + 0)* in) {
  T v;
  std::memcpy(&v, in, sizeof v);
  return v;
}

template <class F>
struct LaneTypes;
template <>
struct LaneTypes<V> {
  using I = Vi;
  using D = Vd;
  using DI = Vdi;
};
template <>
struct LaneTypes<W> {
  using I = Wi;
  using D = Wd;
  using DI = Wdi;
};

// Lane j of out[i] = base[N * j + i]: element i of sub-block j.
template <int N, class F>
void transpose_lanes(const float* base, F* out) {
  float t[N][lanes_of<F>];
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < lanes_of<F>; ++j) t[i][j] = base[N * j + i];
  std::memcpy(out, t, sizeof t);
}

// A halving sum (tree_sum of kquants_search.hpp) over the values f(0..N), computed as
// the same binary tree (node = left half + right half, the halves being the even and odd
// positions of the node's index set) but depth first, so that the elements are
// made on demand and at most five partial sums per tree are live: everything
// stays in registers. f may return a bundle of several sums.
template <int Base, int Stride, int N, class F>
LOWBIT_LANES_INLINE auto tree_sum_of(const F& f) {
  if constexpr (N == 1)
    return f(Base);
  else
    return tree_sum_of<Base, 2 * Stride, N / 2>(f) + tree_sum_of<Base + Stride, 2 * Stride, N / 2>(f);
}
}  // namespace
}  // namespace lowbit::kernels
