// safetensors element types and conversions between the floating types and float32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace septa::safetensors {

enum class Dtype { kBool, kU8, kI8, kF8E4M3, kF8E5M2, kI16, kU16, kF16, kBF16, kI32, kU32, kF32, kI64, kU64, kF64 };

// "F32", "BF16", ... as written in safetensors headers.
const char* dtype_name(Dtype dtype);
// The Dtype named `name` (exact, upper case), or nullopt.
std::optional<Dtype> parse_dtype(std::string_view name);
// Bytes per element.
std::size_t dtype_size(Dtype dtype);
// F64, F32, F16, BF16: the types the converters below handle.
bool is_float(Dtype dtype);

// IEEE binary16 / bfloat16 <-> binary32, round to nearest even; NaN stays NaN, overflow -> inf.
float half_to_float(std::uint16_t bits);
std::uint16_t float_to_half(float value);
float bfloat16_to_float(std::uint16_t bits);
std::uint16_t float_to_bfloat16(float value);

// dst[n] (float32) <- src[n] of type `dtype`; src needs no alignment. Throws septa::ModelError
// when `dtype` is not a float type.
void to_f32(Dtype dtype, const void* src, std::size_t n, float* dst);
// dst[n] of type `dtype` <- src[n] (float32); dst needs no alignment.
void from_f32(Dtype dtype, const float* src, std::size_t n, void* dst);

// Whether to_f32/from_f32 use the CPU's F16C instructions for F16 when it has them (the
// default); both paths give identical bits. Returns the previous setting (for tests).
bool set_conversion_simd(bool enabled);

}  // namespace septa::safetensors
