#include "safetensors/dtype.h"

#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

#include "septa/error.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "septa's safetensors code assumes a little-endian host (the file format is little-endian)"
#endif

namespace septa::safetensors {

namespace {

struct DtypeEntry {
  Dtype dtype;
  const char* name;
  std::size_t size;
};

constexpr DtypeEntry kDtypes[] = {
    {Dtype::kBool, "BOOL", 1}, {Dtype::kU8, "U8", 1},     {Dtype::kI8, "I8", 1},
    {Dtype::kF8E4M3, "F8_E4M3", 1}, {Dtype::kF8E5M2, "F8_E5M2", 1}, {Dtype::kI16, "I16", 2},
    {Dtype::kU16, "U16", 2},   {Dtype::kF16, "F16", 2},   {Dtype::kBF16, "BF16", 2},
    {Dtype::kI32, "I32", 4},   {Dtype::kU32, "U32", 4},   {Dtype::kF32, "F32", 4},
    {Dtype::kI64, "I64", 8},   {Dtype::kU64, "U64", 8},   {Dtype::kF64, "F64", 8},
};

const DtypeEntry& entry(Dtype dtype) {
  for (const auto& e : kDtypes)
    if (e.dtype == dtype) return e;
  throw InternalError("safetensors: unknown Dtype value");
}

std::uint32_t float_bits(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, 4);
  return bits;
}

float bits_float(std::uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, 4);
  return value;
}

}  // namespace

const char* dtype_name(Dtype dtype) { return entry(dtype).name; }

std::optional<Dtype> parse_dtype(std::string_view name) {
  for (const auto& e : kDtypes)
    if (name == e.name) return e.dtype;
  return std::nullopt;
}

std::size_t dtype_size(Dtype dtype) { return entry(dtype).size; }

bool is_float(Dtype dtype) {
  return dtype == Dtype::kF64 || dtype == Dtype::kF32 || dtype == Dtype::kF16 || dtype == Dtype::kBF16;
}

// binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1F;
  std::uint32_t mantissa = h & 0x3FF;
  if (exponent == 0x1F)  // inf, or NaN made quiet (as F16C's vcvtph2ps does)
    return bits_float(sign | 0x7F800000 | (mantissa ? 0x400000 | (mantissa << 13) : 0));
  if (exponent != 0) return bits_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
  if (mantissa == 0) return bits_float(sign);
  // Subnormal: value = mantissa * 2^-24, exact in float32.
  const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
  return sign ? -magnitude : magnitude;
}

// Round to nearest even on the float32 bit pattern: below 2^-14 the result is subnormal and
// the shift grows; above 65504 (after rounding) it is infinity.
std::uint16_t float_to_half(float value) {
  const std::uint32_t f = float_bits(value);
  const std::uint16_t sign = static_cast<std::uint16_t>((f >> 16) & 0x8000);
  const std::uint32_t abs = f & 0x7FFFFFFF;
  if (abs >= 0x7F800000) {  // inf or NaN (keep NaN quiet and non-zero)
    return static_cast<std::uint16_t>(sign | 0x7C00 | (abs > 0x7F800000 ? 0x200 | ((abs >> 13) & 0x3FF) : 0));
  }
  if (abs >= 0x477FF000) return static_cast<std::uint16_t>(sign | 0x7C00);  // rounds past 65504
  if (abs < 0x38800000) {  // below 2^-14: subnormal half (or zero)
    if (abs < 0x33000000) return sign;  // below 2^-25: rounds to zero
    const std::uint32_t exponent = abs >> 23;
    const std::uint32_t mantissa = (abs & 0x7FFFFF) | 0x800000;
    const std::uint32_t shift = 126 - exponent;  // 14..24 (value = mantissa * 2^(e-150))
    std::uint32_t half = mantissa >> shift;
    const std::uint32_t rest = mantissa & ((1u << shift) - 1);
    const std::uint32_t halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (half & 1))) ++half;
    return static_cast<std::uint16_t>(sign | half);
  }
  std::uint32_t half = ((abs >> 23) - 112) << 10 | ((abs >> 13) & 0x3FF);
  const std::uint32_t rest = abs & 0x1FFF;
  if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) ++half;  // carries into the exponent
  return static_cast<std::uint16_t>(sign | half);
}

float bfloat16_to_float(std::uint16_t bits) { return bits_float(static_cast<std::uint32_t>(bits) << 16); }

std::uint16_t float_to_bfloat16(float value) {
  const std::uint32_t f = float_bits(value);
  if ((f & 0x7FFFFFFF) > 0x7F800000) return static_cast<std::uint16_t>((f >> 16) | 0x40);  // quiet NaN
  const std::uint32_t rounding = 0x7FFF + ((f >> 16) & 1);
  return static_cast<std::uint16_t>((f + rounding) >> 16);
}

namespace {

#if defined(__x86_64__)
// F16C converts 8 entries per instruction, with the same rounding (to nearest even) and NaN
// handling as the portable code above; chosen at run time, so no global -m flags.
__attribute__((target("avx,f16c"))) void half_to_float_f16c(const unsigned char* src, std::size_t n, float* dst) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i))));
  for (; i < n; ++i) {
    std::uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    dst[i] = half_to_float(h);
  }
}

__attribute__((target("avx,f16c"))) void float_to_half_f16c(const float* src, std::size_t n, unsigned char* dst) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  for (; i < n; ++i) {
    const std::uint16_t h = float_to_half(src[i]);
    std::memcpy(dst + 2 * i, &h, 2);
  }
}

// CPUID leaf 1, ECX: bit 27 OSXSAVE, 28 AVX, 29 F16C (clang's __builtin_cpu_supports lacks
// "f16c", so the sanitizer and fuzz builds could not compile this file).
bool detect_f16c() {
  unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  const unsigned int needed = (1u << 27) | (1u << 28) | (1u << 29);
  return (ecx & needed) == needed;
}
#else
bool detect_f16c() { return false; }
#endif

bool use_simd = detect_f16c();

}  // namespace

bool set_conversion_simd(bool enabled) {
  const bool previous = use_simd;
  use_simd = enabled && detect_f16c();
  return previous;
}

void to_f32(Dtype dtype, const void* src, std::size_t n, float* dst) {
  if (n == 0 && is_float(dtype)) return;  // (src and dst may be null)
#if defined(__x86_64__)
  if (dtype == Dtype::kF16 && use_simd) return half_to_float_f16c(static_cast<const unsigned char*>(src), n, dst);
#endif
  const auto* bytes = static_cast<const unsigned char*>(src);
  switch (dtype) {
    case Dtype::kF32:
      std::memcpy(dst, src, n * 4);
      return;
    case Dtype::kF16:
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t h;
        std::memcpy(&h, bytes + 2 * i, 2);
        dst[i] = half_to_float(h);
      }
      return;
    case Dtype::kBF16:
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t h;
        std::memcpy(&h, bytes + 2 * i, 2);
        dst[i] = bfloat16_to_float(h);
      }
      return;
    case Dtype::kF64:
      for (std::size_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, bytes + 8 * i, 8);
        dst[i] = static_cast<float>(d);
      }
      return;
    default:
      throw ModelError(std::string("cannot convert ") + dtype_name(dtype) +
                       " to F32: only F64, F32, F16 and BF16 are floating types");
  }
}

void from_f32(Dtype dtype, const float* src, std::size_t n, void* dst) {
  if (n == 0 && is_float(dtype)) return;
#if defined(__x86_64__)
  if (dtype == Dtype::kF16 && use_simd) return float_to_half_f16c(src, n, static_cast<unsigned char*>(dst));
#endif
  auto* bytes = static_cast<unsigned char*>(dst);
  switch (dtype) {
    case Dtype::kF32:
      std::memcpy(dst, src, n * 4);
      return;
    case Dtype::kF16:
      for (std::size_t i = 0; i < n; ++i) {
        const std::uint16_t h = float_to_half(src[i]);
        std::memcpy(bytes + 2 * i, &h, 2);
      }
      return;
    case Dtype::kBF16:
      for (std::size_t i = 0; i < n; ++i) {
        const std::uint16_t h = float_to_bfloat16(src[i]);
        std::memcpy(bytes + 2 * i, &h, 2);
      }
      return;
    case Dtype::kF64:
      for (std::size_t i = 0; i < n; ++i) {
        const double d = src[i];
        std::memcpy(bytes + 8 * i, &d, 8);
      }
      return;
    default:
      throw ModelError(std::string("cannot convert F32 to ") + dtype_name(dtype) +
                       ": only F64, F32, F16 and BF16 are floating types");
  }
}

}  // namespace septa::safetensors
