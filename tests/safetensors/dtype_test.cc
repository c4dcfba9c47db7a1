// float16 / bfloat16 conversions: exhaustive round trips and round-to-nearest-even checks.
#include "safetensors/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "septa/error.h"

namespace septa::safetensors {
namespace {

float from_bits(std::uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

TEST(Dtype, NamesAndSizes) {
  EXPECT_EQ(*parse_dtype("BF16"), Dtype::kBF16);
  EXPECT_EQ(std::string(dtype_name(Dtype::kF8E4M3)), "F8_E4M3");
  EXPECT_EQ(dtype_size(Dtype::kF64), 8u);
  EXPECT_EQ(dtype_size(Dtype::kBool), 1u);
  EXPECT_FALSE(parse_dtype("f32"));
  EXPECT_FALSE(parse_dtype("F128"));
}

TEST(Dtype, HalfKnownValues) {
  EXPECT_EQ(float_to_half(1.0f), 0x3C00);
  EXPECT_EQ(float_to_half(-2.0f), 0xC000);
  EXPECT_EQ(float_to_half(65504.0f), 0x7BFF);
  EXPECT_EQ(float_to_half(65519.0f), 0x7BFF);  // below the halfway point to 65536
  EXPECT_EQ(float_to_half(65520.0f), 0x7C00);  // halfway, rounds to even = infinity
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25)), 0x0000);  // halfway to zero: even
  EXPECT_EQ(float_to_half(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(float_to_half(-0.0f), 0x8000);
  EXPECT_EQ(float_to_half(INFINITY), 0x7C00);
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(NAN))));
  EXPECT_EQ(half_to_float(0x3555), 0.333251953125f);
}

TEST(Dtype, HalfRoundTripIsExactForEveryPattern) {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float f = half_to_float(static_cast<std::uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(half_to_float(float_to_half(f)))) << h;
      EXPECT_EQ(h & 0x7C00, 0x7C00u);
      continue;
    }
    ASSERT_EQ(float_to_half(f), h) << "pattern " << h;
  }
}

// float_to_half(f) is the nearest half (ties to even), checked against its neighbours.
void expect_nearest(float f, std::uint16_t (*to)(float), float (*back)(std::uint16_t)) {
  const std::uint16_t h = to(f);
  const double v = back(h);
  if (std::isinf(v)) return;  // overflow is checked by the known-value tests
  const double err = std::fabs(static_cast<double>(f) - v);
  for (const int step : {-1, 1}) {
    const std::uint16_t n = static_cast<std::uint16_t>(h + step);
    const double w = back(n);
    if (std::isnan(w) || std::signbit(w) != std::signbit(v)) continue;
    const double other = std::fabs(static_cast<double>(f) - w);
    ASSERT_LE(err, other) << f;
    if (err == other) {
      ASSERT_EQ(h & 1, 0) << "tie not to even: " << f;
    }
  }
}

TEST(Dtype, ConversionsRoundToNearestEven) {
  std::mt19937 rng(7);
  for (int i = 0; i < 200000; ++i) {
    // Random bit patterns across the whole float range, and near the half range.
    const float any = from_bits(static_cast<std::uint32_t>(rng()));
    if (std::isnan(any)) continue;
    const float small = std::ldexp(std::uniform_real_distribution<float>(-1, 1)(rng),
                                   std::uniform_int_distribution<int>(-26, 16)(rng));
    expect_nearest(small, float_to_half, half_to_float);
    expect_nearest(any, float_to_bfloat16, bfloat16_to_float);
    expect_nearest(small, float_to_bfloat16, bfloat16_to_float);
  }
}

TEST(Dtype, BfloatKnownValues) {
  EXPECT_EQ(float_to_bfloat16(1.0f), 0x3F80);
  EXPECT_EQ(float_to_bfloat16(from_bits(0x3F808000)), 0x3F80);  // tie, even stays
  EXPECT_EQ(float_to_bfloat16(from_bits(0x3F818000)), 0x3F82);  // tie, odd rounds up
  EXPECT_EQ(float_to_bfloat16(from_bits(0x7F7FFFFF)), 0x7F80);  // max float rounds to inf
  EXPECT_TRUE(std::isnan(bfloat16_to_float(float_to_bfloat16(NAN))));
}

TEST(Dtype, BufferConversions) {
  const float in[5] = {1.0f, -0.5f, 3.0f, 1e-8f, 1234.5f};
  for (const Dtype d : {Dtype::kF32, Dtype::kF16, Dtype::kBF16, Dtype::kF64}) {
    std::vector<unsigned char> raw(5 * dtype_size(d) + 1);
    from_f32(d, in, 5, raw.data() + 1);  // unaligned on purpose
    float out[5];
    to_f32(d, raw.data() + 1, 5, out);
    for (int i = 0; i < 5; ++i) EXPECT_NEAR(out[i], in[i], std::fabs(in[i]) * 4e-3 + 1e-7) << dtype_name(d);
  }
  float out[1];
  const std::int32_t x = 1;
  EXPECT_THROW(to_f32(Dtype::kI32, &x, 1, out), ModelError);
}

}  // namespace
}  // namespace septa::safetensors

namespace septa::safetensors {
namespace {

// The F16C path (when the CPU has it) and the portable path give the same bits.
TEST(Dtype, SimdAndPortableConversionsAgree) {
  std::vector<std::uint16_t> halves(65536 + 3);
  for (std::uint32_t h = 0; h < halves.size(); ++h) halves[h] = static_cast<std::uint16_t>(h * 40503u);
  std::vector<float> floats(200003);
  std::mt19937 rng(11);
  for (auto& f : floats) {
    const std::uint32_t bits = static_cast<std::uint32_t>(rng());
    std::memcpy(&f, &bits, 4);
    if (rng() % 2) f = std::ldexp(std::uniform_real_distribution<float>(-1, 1)(rng), static_cast<int>(rng() % 50) - 30);
  }
  std::vector<float> simd_f(halves.size()), plain_f(halves.size());
  std::vector<std::uint16_t> simd_h(floats.size()), plain_h(floats.size());
  const bool had = set_conversion_simd(true);
  to_f32(Dtype::kF16, halves.data(), halves.size(), simd_f.data());
  from_f32(Dtype::kF16, floats.data(), floats.size(), simd_h.data());
  set_conversion_simd(false);
  to_f32(Dtype::kF16, halves.data(), halves.size(), plain_f.data());
  from_f32(Dtype::kF16, floats.data(), floats.size(), plain_h.data());
  set_conversion_simd(had);
  EXPECT_EQ(std::memcmp(simd_f.data(), plain_f.data(), simd_f.size() * 4), 0);
  EXPECT_EQ(simd_h, plain_h);
}

}  // namespace
}  // namespace septa::safetensors
