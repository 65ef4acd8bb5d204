// fp16 / bf16 conversion, checked exhaustively against float64 arithmetic that
// decodes the IEEE fields from their definition.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "lowbit/core/half.hpp"

namespace {

// binary16 value from its definition: (-1)^s * 2^(e-15) * (1 + m/1024), subnormals
// 2^-14 * m/1024.
double half_value(uint16_t h) {
  const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  const double sign = s ? -1.0 : 1.0;
  if (e == 31) return m ? std::numeric_limits<double>::quiet_NaN() : sign * INFINITY;
  if (e == 0) return sign * std::ldexp(m / 1024.0, -14);
  return sign * std::ldexp(1.0 + m / 1024.0, e - 15);
}

double bf16_value(uint16_t b) {
  const int s = b >> 15, e = (b >> 7) & 255, m = b & 127;
  const double sign = s ? -1.0 : 1.0;
  if (e == 255) return m ? std::numeric_limits<double>::quiet_NaN() : sign * INFINITY;
  if (e == 0) return sign * std::ldexp(m / 128.0, -126);
  return sign * std::ldexp(1.0 + m / 128.0, e - 127);
}

// Nearest representable value with ties to the even code, computed over all codes
// of the same sign in float64 (independent of the bit tricks under test).
template <class ValueFn>
uint16_t nearest_even(double x, ValueFn value, uint16_t max_finite_code) {
  const uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  const double ax = std::fabs(x);
  // Binary search the last finite code whose value is <= ax.
  uint16_t lo = 0, hi = max_finite_code;
  if (ax >= value(max_finite_code)) {
    lo = max_finite_code;
  } else {
    while (hi - lo > 1) {
      const uint16_t mid = static_cast<uint16_t>((lo + hi) / 2);
      (value(mid) <= ax ? lo : hi) = mid;
    }
  }
  const uint16_t up = static_cast<uint16_t>(lo + 1);  // for lo == max, this is Inf
  const double vlo = value(lo), vup = value(up);
  if (lo == max_finite_code) {
    // Past the largest finite value: halfway to the next power of two rounds to Inf.
    const double next = 2.0 * vlo - value(static_cast<uint16_t>(lo - 1));
    if (ax - vlo < next - ax || (ax - vlo == next - ax && (lo & 1) == 0)) return sign | lo;
    return sign | up;
  }
  if (ax - vlo < vup - ax) return sign | lo;
  if (ax - vlo > vup - ax) return sign | up;
  return sign | ((lo & 1) ? up : lo);
}

TEST(Half, DecodesAll65536CodesExactly) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const double expect = half_value(static_cast<uint16_t>(h));
    const float got = lowbit::fp16_to_fp32(static_cast<uint16_t>(h));
    if (std::isnan(expect)) {
      ASSERT_TRUE(std::isnan(got)) << "code 0x" << std::hex << h;
    } else {
      ASSERT_EQ(static_cast<double>(got), expect) << "code 0x" << std::hex << h;
      ASSERT_EQ(std::signbit(got), (h & 0x8000) != 0) << "code 0x" << std::hex << h;
    }
  }
}

TEST(Half, EncodesEveryCodeAndEveryMidpointWithTiesToEven) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const auto code = static_cast<uint16_t>(h);
    const double v = half_value(code);
    if (std::isnan(v)) {
      const uint16_t back = lowbit::fp32_to_fp16(lowbit::fp16_to_fp32(code));
      ASSERT_EQ(back & 0x7c00, 0x7c00);
      ASSERT_NE(back & 0x03ff, 0) << "NaN must stay NaN, code 0x" << std::hex << h;
      continue;
    }
    ASSERT_EQ(lowbit::fp32_to_fp16(static_cast<float>(v)), code) << "code 0x" << std::hex << h;
    if (std::isinf(v) || (code & 0x7fff) == 0x7bff) continue;
    // The midpoint to the next code and points just either side of it.
    const double next = half_value(static_cast<uint16_t>(code + 1));
    const double mid = 0.5 * (v + next);
    const float mf = static_cast<float>(mid);  // exact: a midpoint needs 12 significant bits
    ASSERT_EQ(static_cast<double>(mf), mid);
    for (float xf : {mf, std::nextafter(mf, static_cast<float>(v)), std::nextafter(mf, static_cast<float>(next))}) {
      const double x = xf;
      ASSERT_EQ(lowbit::fp32_to_fp16(xf), nearest_even(x, half_value, 0x7bff))
          << "x = " << x << " near code 0x" << std::hex << h;
    }
  }
}

TEST(Half, OverflowUnderflowAndSpecials) {
  EXPECT_EQ(lowbit::fp32_to_fp16(65504.0f), 0x7bff);
  EXPECT_EQ(lowbit::fp32_to_fp16(65519.996f), 0x7bff);  // below the rounding boundary
  EXPECT_EQ(lowbit::fp32_to_fp16(65520.0f), 0x7c00);    // tie at the boundary goes to Inf (even)
  EXPECT_EQ(lowbit::fp32_to_fp16(1e10f), 0x7c00);
  EXPECT_EQ(lowbit::fp32_to_fp16(-INFINITY), 0xfc00);
  EXPECT_EQ(lowbit::fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);   // half of the smallest subnormal: even
  EXPECT_EQ(lowbit::fp32_to_fp16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(lowbit::fp32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(lowbit::fp32_to_fp16(1e-30f), 0x0000);
}

TEST(BFloat16, DecodesAll65536CodesExactly) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const double expect = bf16_value(static_cast<uint16_t>(b));
    const float got = lowbit::bf16_to_fp32(static_cast<uint16_t>(b));
    if (std::isnan(expect)) {
      ASSERT_TRUE(std::isnan(got));
    } else {
      ASSERT_EQ(static_cast<double>(got), expect) << "code 0x" << std::hex << b;
    }
  }
}

TEST(BFloat16, EncodesEveryCodeAndEveryMidpointWithTiesToEven) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const auto code = static_cast<uint16_t>(b);
    const double v = bf16_value(code);
    if (std::isnan(v)) {
      const uint16_t back = lowbit::fp32_to_bf16(lowbit::bf16_to_fp32(code));
      ASSERT_TRUE((back & 0x7f80) == 0x7f80 && (back & 0x7f)) << "NaN must stay NaN, code 0x" << std::hex << b;
      continue;
    }
    ASSERT_EQ(lowbit::fp32_to_bf16(static_cast<float>(v)), code);
    if (std::isinf(v) || (code & 0x7fff) == 0x7f7f) continue;
    const double next = bf16_value(static_cast<uint16_t>(code + 1));
    const double mid = 0.5 * (v + next);  // always exactly a float (bf16 is a truncated float)
    for (double x : {mid, static_cast<double>(std::nextafter(static_cast<float>(mid), static_cast<float>(v))),
                     static_cast<double>(std::nextafter(static_cast<float>(mid), static_cast<float>(next)))}) {
      ASSERT_EQ(lowbit::fp32_to_bf16(static_cast<float>(x)), nearest_even(x, bf16_value, 0x7f7f))
          << "x = " << x << " near code 0x" << std::hex << b;
    }
  }
}

}  // namespace
