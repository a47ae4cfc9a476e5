// The 16-bit conversions of kernels/dtype_convert.hpp against independent computations: an exact decode
// built from the IEEE definitions in long double, a nearest-value search over every finite half, and the
// committed numpy/torch roundings in data/fixtures/io/dtypes_expected.h5.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "dtype_convert.hpp"
#include "io/exemplars.hpp"
#include "test_support.hpp"

namespace cm {
namespace {

bool is_f16_nan(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }
bool is_bf16_nan(uint16_t h) { return (h & 0x7f80u) == 0x7f80u && (h & 0x7fu) != 0; }

// Value of a half from its definition: (-1)^s * 2^(e-15) * 1.m, or 2^-14 * 0.m for subnormals.
long double f16_value(uint16_t h) {
  const int e = (h >> 10) & 0x1f;
  const int m = h & 0x3ff;
  const long double sign = (h & 0x8000) ? -1.0L : 1.0L;
  if (e == 0x1f) return sign * INFINITY;
  if (e == 0) return sign * std::ldexp(static_cast<long double>(m), -24);
  return sign * std::ldexp(static_cast<long double>(1024 + m), e - 25);
}

long double bf16_value(uint16_t h) {
  const int e = (h >> 7) & 0xff;
  const int m = h & 0x7f;
  const long double sign = (h & 0x8000) ? -1.0L : 1.0L;
  if (e == 0xff) return sign * INFINITY;
  if (e == 0) return sign * std::ldexp(static_cast<long double>(m), -133);
  return sign * std::ldexp(static_cast<long double>(128 + m), e - 134);
}

// Round-to-nearest-even of x between the adjacent magnitudes `lo` < `hi` (bit patterns lo_bits, lo_bits+1).
uint16_t nearest_even(long double x, long double lo, long double hi, uint16_t lo_bits) {
  const long double below = x - lo, above = hi - x;
  if (below < above) return lo_bits;
  if (above < below) return static_cast<uint16_t>(lo_bits + 1);
  return (lo_bits & 1u) ? static_cast<uint16_t>(lo_bits + 1) : lo_bits;
}

// The half nearest to f (ties to even), found by searching the sorted finite halves. Beyond 65504 the
// next step is 65536 (where inf takes the place of the first unrepresentable value).
uint16_t reference_f16(float f) {
  static const std::vector<long double> magnitudes = [] {
    std::vector<long double> v;
    for (uint32_t h = 0; h <= 0x7c00u; ++h) v.push_back(h == 0x7c00u ? 65536.0L : f16_value(static_cast<uint16_t>(h)));
    return v;
  }();
  const uint16_t sign = std::signbit(f) ? 0x8000u : 0;
  const long double x = std::fabs(static_cast<long double>(f));
  if (x >= 65536.0L) return sign | 0x7c00u;
  const auto it = std::upper_bound(magnitudes.begin(), magnitudes.end(), x);
  const auto lo = static_cast<uint16_t>(it - magnitudes.begin() - 1);
  if (magnitudes[lo] == x) return sign | lo;
  return sign | nearest_even(x, magnitudes[lo], magnitudes[lo + 1u], lo);
}

// The bfloat16 nearest to f (ties to even): its magnitude lies between the truncated pattern and the next;
// the value after the largest finite one is 2^128, where inf sits.
uint16_t reference_bf16(float f) {
  const uint16_t sign = std::signbit(f) ? 0x8000u : 0;
  const long double x = std::fabs(static_cast<long double>(f));
  const auto lo = static_cast<uint16_t>((float_bits(f) & 0x7fffffffu) >> 16);
  const long double lo_value = bf16_value(lo);
  if (lo_value == x) return sign | lo;
  const long double hi_value = lo == 0x7f7fu ? std::ldexp(1.0L, 128) : bf16_value(static_cast<uint16_t>(lo + 1u));
  return sign | nearest_even(x, lo_value, hi_value, lo);
}

TEST(DtypeConvert, F16DecodeMatchesDefinitionForAllPatterns) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const auto h = static_cast<uint16_t>(i);
    const float got = f16_to_float(h);
    if (is_f16_nan(h)) {
      EXPECT_TRUE(std::isnan(got)) << std::hex << i;
      continue;
    }
    EXPECT_EQ(static_cast<long double>(got), f16_value(h)) << std::hex << i;
    EXPECT_EQ(std::signbit(got), (h & 0x8000u) != 0) << std::hex << i;
  }
}

TEST(DtypeConvert, F16RoundTripsEveryNonNanPattern) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const auto h = static_cast<uint16_t>(i);
    const uint16_t back = float_to_f16(f16_to_float(h));
    if (is_f16_nan(h))
      EXPECT_TRUE(is_f16_nan(back) && (back & 0x8000u) == (h & 0x8000u)) << std::hex << i;
    else
      EXPECT_EQ(back, h) << std::hex << i;
  }
}

TEST(DtypeConvert, Bf16DecodeAndRoundTripForAllPatterns) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const auto h = static_cast<uint16_t>(i);
    const float f = bf16_to_float(h);
    const uint16_t back = float_to_bf16(f);
    if (is_bf16_nan(h)) {
      EXPECT_TRUE(std::isnan(f) && is_bf16_nan(back)) << std::hex << i;
      continue;
    }
    EXPECT_EQ(static_cast<long double>(f), bf16_value(h)) << std::hex << i;
    EXPECT_EQ(back, h) << std::hex << i;
  }
}

// Every midpoint between adjacent finite halves (both signs) rounds to the even one; one float ulp either
// side rounds to the nearer one. The last midpoint, 65520, rounds (to even) up to inf.
TEST(DtypeConvert, F16MidpointsRoundToEven) {
  for (uint32_t lo = 0; lo < 0x7c00u; ++lo) {
    const long double a = f16_value(static_cast<uint16_t>(lo));
    const long double b = lo == 0x7bffu ? 65536.0L : f16_value(static_cast<uint16_t>(lo + 1));
    const float mid = static_cast<float>((a + b) / 2);
    ASSERT_EQ(static_cast<long double>(mid), (a + b) / 2) << "midpoint not exact in float";
    const uint16_t even = (lo & 1u) ? static_cast<uint16_t>(lo + 1) : static_cast<uint16_t>(lo);
    for (const uint16_t sign : {uint16_t{0}, uint16_t{0x8000u}}) {
      const float s = sign ? -1.0f : 1.0f;
      EXPECT_EQ(float_to_f16(s * mid), static_cast<uint16_t>(sign | even)) << std::hex << lo;
      EXPECT_EQ(float_to_f16(s * std::nextafter(mid, 0.0f)), static_cast<uint16_t>(sign | lo)) << std::hex << lo;
      EXPECT_EQ(float_to_f16(s * std::nextafter(mid, INFINITY)), static_cast<uint16_t>(sign | (lo + 1)))
          << std::hex << lo;
    }
  }
}

TEST(DtypeConvert, Bf16MidpointsRoundToEven) {
  for (uint32_t lo = 0; lo < 0x7f80u; ++lo) {
    // Adjacent bfloat16 values differ by 2^16 float ulps, so their midpoint is the float with bit 15 set.
    const float mid = bits_float((lo << 16) | 0x8000u);
    const uint16_t even = (lo & 1u) ? static_cast<uint16_t>(lo + 1) : static_cast<uint16_t>(lo);
    for (const uint16_t sign : {uint16_t{0}, uint16_t{0x8000u}}) {
      const float s = sign ? -1.0f : 1.0f;
      EXPECT_EQ(float_to_bf16(s * mid), static_cast<uint16_t>(sign | even)) << std::hex << lo;
      EXPECT_EQ(float_to_bf16(s * std::nextafter(mid, 0.0f)), static_cast<uint16_t>(sign | lo)) << std::hex << lo;
      EXPECT_EQ(float_to_bf16(s * std::nextafter(mid, INFINITY)), static_cast<uint16_t>(sign | (lo + 1)))
          << std::hex << lo;
    }
  }
}

// Random float bit patterns over every exponent, against the nearest-value searches above.
TEST(DtypeConvert, RandomFloatsMatchNearestValueSearch) {
  std::mt19937 rng(12345);
  int checked = 0;
  for (int i = 0; i < 2'000'000; ++i) {
    const float f = bits_float(rng());
    if (std::isnan(f)) {
      EXPECT_TRUE(is_f16_nan(float_to_f16(f)) && is_bf16_nan(float_to_bf16(f)));
      continue;
    }
    ASSERT_EQ(float_to_f16(f), reference_f16(f)) << std::hexfloat << f;
    ASSERT_EQ(float_to_bf16(f), reference_bf16(f)) << std::hexfloat << f;
    ++checked;
  }
  EXPECT_GT(checked, 1'900'000);
}

TEST(DtypeConvert, MatchesNumpyAndTorchRounding) {
  const std::string file = (test::fixtures_dir() / "io" / "dtypes_expected.h5").string();
  const std::vector<float> x = read_h5_f32(file, "round_source_f32", nullptr);
  const std::vector<float> f16 = read_h5_f32(file, "round_f16", nullptr);    // numpy float16, decoded
  const std::vector<float> bf16 = read_h5_f32(file, "round_bf16", nullptr);  // torch bfloat16, decoded
  ASSERT_EQ(x.size(), f16.size());
  ASSERT_EQ(x.size(), bf16.size());
  ASSERT_GT(x.size(), 1000u);
  // The decoders are exact (tests above), so equal bits of the decoded values mean equal 16-bit patterns.
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(float_bits(f16_to_float(float_to_f16(x[i]))), float_bits(f16[i])) << std::hexfloat << x[i];
    EXPECT_EQ(float_bits(bf16_to_float(float_to_bf16(x[i]))), float_bits(bf16[i])) << std::hexfloat << x[i];
  }
}

}  // namespace
}  // namespace cm
