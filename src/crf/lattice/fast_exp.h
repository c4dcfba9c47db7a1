// exp() written so that loops over it vectorise (glibc's exp is a scalar call).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

// Hot loops get an AVX2/FMA clone chosen at run time, without a global -march flag.
// ThreadSanitizer builds go without: gcc runs the clones' resolver before the TSan runtime is up.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
#define SEPTA_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
// AVX2 without FMA: the same roundings as the default clone (gcc contracts a * b + c into an
// FMA where the target has one), for loops whose results must not depend on the machine.
#define SEPTA_AVX2_CLONES __attribute__((target_clones("avx2", "default")))
#define SEPTA_VECTOR_CLONE_V3 __builtin_cpu_supports("x86-64-v3")
#else
#define SEPTA_VECTOR_CLONES
#define SEPTA_AVX2_CLONES
#define SEPTA_VECTOR_CLONE_V3 false
#endif

namespace septa::crf {

// Whether SEPTA_VECTOR_CLONES functions run their x86-64-v3 clone on this machine: code that must
// round as they do (e.g. the fused SGD step against softmax_normalize) asks this. Always false
// where there are no clones (clang: its __builtin_cpu_supports has no "x86-64-v3"; TSan).
inline bool vector_clone_v3() {
  static const bool v3 = SEPTA_VECTOR_CLONE_V3;
  return v3;
}

/*
 * exp(x) = 2^n * e^r with n = round(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2]
 * (Cody & Waite 1980: ln 2 split in two parts so r is exact to ~1 ulp), e^r by its Taylor
 * series to degree 13 (truncation < 1e-17 relative), 2^n added to the exponent bits. The
 * rounding uses the 1.5 * 2^52 shifter trick, so no float-to-int conversion is needed.
 * Inputs are clamped to [-708, 709]: results below e^-708 come back as about 3e-308, not 0.
 * Relative error about 2e-16 against glibc's exp.
 * fast_exp_of_clamped(x) is the same without the clamp, for x already in [-708, 709]: a loop
 * that clamps in one pass and calls it in the next vectorises (gcc keeps the clamp's branch,
 * whose taken side it folds to a constant, and then cannot vectorise a loop over fast_exp).
 */
inline double fast_exp_of_clamped(double x) {
  constexpr double kLog2e = 1.4426950408889634074;
  constexpr double kLn2High = 0.693147180369123816490;    // ln 2, leading 32 bits
  constexpr double kLn2Low = 1.90821492927058770002e-10;  // ln 2 - kLn2High
  constexpr double kShifter = 6755399441055744.0;         // 1.5 * 2^52
  const double shifted = x * kLog2e + kShifter;
  const double n = shifted - kShifter;
  int64_t n_bits, shifter_bits;
  std::memcpy(&n_bits, &shifted, sizeof n_bits);
  std::memcpy(&shifter_bits, &kShifter, sizeof shifter_bits);
  const int64_t exponent = n_bits - shifter_bits;
  const double r = (x - n * kLn2High) - n * kLn2Low;
  double p = 1.0 / 6227020800.0;  // 1/13!
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  uint64_t bits;  // unsigned: adding the (possibly negative) exponent wraps without UB
  std::memcpy(&bits, &p, sizeof bits);
  bits += static_cast<uint64_t>(exponent) << 52;
  std::memcpy(&p, &bits, sizeof p);
  return p;
}

inline double fast_exp(double x) { return fast_exp_of_clamped(std::min(std::max(x, -708.0), 709.0)); }

}  // namespace septa::crf
