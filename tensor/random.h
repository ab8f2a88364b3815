// Seeded random numbers from a counter-based stream: number k of a generator seeded with s is
// SplitMix64's k-th output for s, a pure function of (s, k). Bulk draws (rand, randn) therefore
// run in parallel and still give the same tensor for a seed whatever the thread count, and a
// device could produce the same values without a host round trip. Uniforms carry 53 random bits;
// normals come from Box-Muller on consecutive pairs of uniforms.
#pragma once

#include <cstdint>
#include <string>

#include "tensor/tensor.h"

namespace gndet {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) { manual_seed(seed); }
  void manual_seed(uint64_t seed);
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }  // numbers drawn so far

  uint64_t next_u64() { return number(seed_, offset_++); }
  double uniform();                            // (0, 1)
  double normal();                             // N(0, 1)
  int64_t randint(int64_t low, int64_t high);  // [low, high), unbiased

  // n draws at once, in parallel; the stream advances exactly as n sequential uniform() calls
  // (fill_normal: as 2 * ceil(n / 2) uniforms).
  template <class T>
  void fill_uniform(T* out, int64_t n);
  template <class T>
  void fill_normal(T* out, int64_t n);

  // Everything needed to continue the stream exactly (checkpoints).
  std::string state() const;
  void set_state(const std::string& state);

  // SplitMix64: output k of the stream seeded with `seed`.
  static uint64_t number(uint64_t seed, uint64_t k) {
    uint64_t z = seed + (k + 1) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // A 64-bit number as a uniform in the open interval (0, 1): 53 bits, offset by half a step.
  static double to_uniform(uint64_t x) { return (static_cast<double>(x >> 11) + 0.5) * 0x1.0p-53; }

 private:
  uint64_t seed_ = 0;
  uint64_t offset_ = 0;
  bool has_spare_normal_ = false;
  double spare_normal_ = 0.0;
};

Generator& default_generator();
void manual_seed(uint64_t seed);  // reseeds default_generator()

Tensor rand(const Shape& shape, Generator& gen, TensorOptions options = {});   // U(0, 1)
Tensor randn(const Shape& shape, Generator& gen, TensorOptions options = {});  // N(0, 1)
Tensor rand(const Shape& shape, TensorOptions options = {});
Tensor randn(const Shape& shape, TensorOptions options = {});
// Integers in [low, high); int64 unless options say otherwise.
Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen, TensorOptions options = kInt64);
Tensor randperm(int64_t n, Generator& gen, TensorOptions options = kInt64);

}  // namespace gndet
