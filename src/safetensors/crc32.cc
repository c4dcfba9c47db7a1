#include "safetensors/crc32.h"

#include <zlib.h>

#include <algorithm>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace septa::safetensors {

namespace {

std::uint32_t crc32_zlib(std::uint32_t crc, const unsigned char* p, std::size_t n) {
  uLong c = crc;
  while (n > 0) {
    const uInt chunk = static_cast<uInt>(std::min<std::size_t>(n, 1u << 30));
    c = ::crc32(c, p, chunk);
    p += chunk;
    n -= chunk;
  }
  return static_cast<std::uint32_t>(c);
}

#if defined(__x86_64__)
// CRC by folding (Gopal et al., "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ
// Instruction", Intel, 2009), in the bit-reflected domain. raw(M) = M(x) x^32 mod P(x) is
// linear in M, and a 128-bit block A followed by s bits satisfies
//   raw(A || rest) = raw(fold(A) ^ rest),  fold(A) = A_lo * (x^(s+64) mod P) ^ A_hi * (x^s mod P)
// with each product (64 x 33 bits, reflected) aligned to the next block. Four accumulators
// fold by 512 bits (s = 480: constants k1, k2), then into one by 128 bits (s = 96: k3, k4).
// zlib's crc32(c, M) = ~raw(M ^ ~c) where ~c is xored into M's first four bytes; the last
// 16-byte accumulator and the tail (n mod 16 bytes) go through zlib with initial ~0, which
// computes ~raw of them.
__attribute__((target("pclmul,sse2"))) inline __m128i load16(const unsigned char* q) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
}

__attribute__((target("pclmul,sse2"))) inline __m128i fold(__m128i a, __m128i k, __m128i next) {
  return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(a, k, 0x00), _mm_clmulepi64_si128(a, k, 0x11)), next);
}

__attribute__((target("pclmul,sse2"))) std::uint32_t crc32_pclmul(std::uint32_t crc, const unsigned char* p,
                                                                  std::size_t n) {
  const __m128i k1k2 = _mm_set_epi64x(0x1c6e41596, 0x154442bd4);  // x^(480+64), x^480 mod P, reflected
  const __m128i k3k4 = _mm_set_epi64x(0x0ccaa009e, 0x1751997d0);  // x^(96+64), x^96 mod P, reflected
  __m128i x0 = _mm_xor_si128(load16(p), _mm_cvtsi32_si128(static_cast<int>(~crc)));
  __m128i x1 = load16(p + 16), x2 = load16(p + 32), x3 = load16(p + 48);
  p += 64;
  n -= 64;
  for (; n >= 64; n -= 64, p += 64) {
    x0 = fold(x0, k1k2, load16(p));
    x1 = fold(x1, k1k2, load16(p + 16));
    x2 = fold(x2, k1k2, load16(p + 32));
    x3 = fold(x3, k1k2, load16(p + 48));
  }
  x0 = fold(x0, k3k4, x1);
  x0 = fold(x0, k3k4, x2);
  x0 = fold(x0, k3k4, x3);
  for (; n >= 16; n -= 16, p += 16) x0 = fold(x0, k3k4, load16(p));
  alignas(16) unsigned char last[16];
  _mm_store_si128(reinterpret_cast<__m128i*>(last), x0);
  return crc32_zlib(crc32_zlib(0xFFFFFFFFu, last, 16), p, n);
}

// CPUID leaf 1, ECX bit 1: PCLMULQDQ.
bool detect_pclmul() {
  unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 1)) != 0;
}
#else
bool detect_pclmul() { return false; }
#endif

bool use_simd = detect_pclmul();

}  // namespace

bool set_crc32_simd(bool enabled) {
  const bool previous = use_simd;
  use_simd = enabled && detect_pclmul();
  return previous;
}

std::uint32_t crc32(std::uint32_t crc, const void* bytes, std::size_t n) {
  const auto* p = static_cast<const unsigned char*>(bytes);
#if defined(__x86_64__)
  if (use_simd && n >= 64) return crc32_pclmul(crc, p, n);
#endif
  return n == 0 ? crc : crc32_zlib(crc, p, n);
}

}  // namespace septa::safetensors
