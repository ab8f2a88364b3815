// Seeded random numbers. Values are drawn on the host from a 64-bit Mersenne twister with our own
// uniform and normal transforms (not std::normal_distribution, whose output differs between
// standard libraries), then copied to the target device: a seed gives the same tensor everywhere.
#pragma once

#include <cstdint>
#include <random>

#include "tensor/tensor.h"

namespace gndet {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) { manual_seed(seed); }
  void manual_seed(uint64_t seed);
  uint64_t seed() const { return seed_; }
  uint64_t next_u64() { return engine_(); }
  double uniform();                         // [0, 1), 53 random bits
  double normal();                          // N(0, 1), Box-Muller
  int64_t randint(int64_t low, int64_t high);  // [low, high), unbiased

  // Full engine state, for checkpoints that must resume bit-exactly.
  std::string state() const;
  void set_state(const std::string& state);

 private:
  std::mt19937_64 engine_;
  uint64_t seed_ = 0;
  bool has_spare_normal_ = false;
  double spare_normal_ = 0.0;
};

Generator& default_generator();
void manual_seed(uint64_t seed);  // reseeds default_generator()

Tensor rand(const Shape& shape, Generator& gen, TensorOptions options = {});   // U[0, 1)
Tensor randn(const Shape& shape, Generator& gen, TensorOptions options = {});  // N(0, 1)
Tensor rand(const Shape& shape, TensorOptions options = {});
Tensor randn(const Shape& shape, TensorOptions options = {});
// Integers in [low, high); int64 unless options say otherwise.
Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen, TensorOptions options = kInt64);
Tensor randperm(int64_t n, Generator& gen, TensorOptions options = kInt64);

}  // namespace gndet
