// bfloat16 and float16 as storage types: 16 bits each, converted to and from float with IEEE
// round-to-nearest-even. NaN stays a (quiet) NaN; a float beyond float16's range (|x| >= 65520,
// half way past the largest finite 65504) becomes inf, which is what makes float16 need a loss
// scaler. They have no arithmetic on purpose: gndet computes in float32 and rounds once
// (ops/autocast.h), so the only operations are the conversions. Host and device code alike (the
// CUDA copy kernel converts with them), in plain bit arithmetic so both sides round identically.
//
//   bfloat16: 1 sign, 8 exponent, 7 mantissa bits: float's range, 8 significant bits.
//   float16:  1 sign, 5 exponent, 10 mantissa bits: 2^-24 .. 65504, 11 significant bits.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define GNDET_HOST_DEVICE __host__ __device__
#else
#define GNDET_HOST_DEVICE
#endif

namespace gndet {
namespace half_detail {

GNDET_HOST_DEVICE inline uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
GNDET_HOST_DEVICE inline float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// The upper 16 bits of f, rounded to nearest even on the 16 bits dropped.
GNDET_HOST_DEVICE inline uint16_t bfloat16_bits(float f) {
  const uint32_t u = bits_of(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // NaN: keep it quiet
  const uint32_t lsb = (u >> 16) & 1u;  // ties go to the even neighbour
  return static_cast<uint16_t>((u + 0x7fffu + lsb) >> 16);  // a carry out of the mantissa bumps the exponent: right
}

GNDET_HOST_DEVICE inline uint16_t float16_bits(float f) {
  uint32_t u = bits_of(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  u &= 0x7fffffffu;
  if (u >= 0x47800000u) {  // |f| >= 2^16 (inf and NaN included): no finite float16 is near
    return static_cast<uint16_t>(sign | (u > 0x7f800000u ? 0x7e00u : 0x7c00u));
  }
  if (u < 0x38800000u) {  // |f| < 2^-14: a float16 subnormal (multiples of 2^-24) or zero.
    // Adding 0.5 puts 2^-24 at the float's last mantissa bit, so the float adder itself rounds
    // to nearest even at float16's resolution; the mantissa then holds the float16 bits.
    const float shifted = float_of(u) + 0.5f;
    return static_cast<uint16_t>(sign | (bits_of(shifted) - 0x3f000000u));
  }
  // Normal: rebias the exponent (127 -> 15), round away the low 13 mantissa bits to nearest even.
  // A carry may reach the exponent (and 65520..65535 reach inf, 0x7c00): both are right.
  const uint32_t lsb = (u >> 13) & 1u;
  u += 0xc8000fffu + lsb;  // (15 - 127) << 23 wraps to 0xc8000000; 0xfff + lsb rounds
  return static_cast<uint16_t>(sign | (u >> 13));
}

GNDET_HOST_DEVICE inline float float16_value(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa x 2^-24, exact in float
    const float v = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    return float_of(bits_of(v) | sign);
  }
  if (exponent == 31) return float_of(sign | 0x7f800000u | (mantissa << 13));  // inf, NaN
  return float_of(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

}  // namespace half_detail

struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  GNDET_HOST_DEVICE explicit BFloat16(float f) : bits(half_detail::bfloat16_bits(f)) {}
  GNDET_HOST_DEVICE operator float() const { return half_detail::float_of(static_cast<uint32_t>(bits) << 16); }
  GNDET_HOST_DEVICE static BFloat16 from_bits(uint16_t b) {
    BFloat16 h;
    h.bits = b;
    return h;
  }
};

struct Float16 {
  uint16_t bits = 0;
  Float16() = default;
  GNDET_HOST_DEVICE explicit Float16(float f) : bits(half_detail::float16_bits(f)) {}
  GNDET_HOST_DEVICE operator float() const { return half_detail::float16_value(bits); }
  GNDET_HOST_DEVICE static Float16 from_bits(uint16_t b) {
    Float16 h;
    h.bits = b;
    return h;
  }
};

}  // namespace gndet
