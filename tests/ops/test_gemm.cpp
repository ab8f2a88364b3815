// The float32 GEMM of the CPU kernels (ops/cpu/gemm.h) against a double loop, over sizes that reach
// every edge of its blocking: rows not a multiple of the micro-tile's 8, columns not a multiple of
// its 48 and more than one column block, reductions longer than one K block and with a remainder;
// A and B row-major, column-major and neither; accumulate and the per-row bias; B given by pieces
// written into the scratch. C is poisoned with NaN first wherever it is not accumulated into.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "ops/cpu/gemm.h"
#include "tests/support.h"

namespace gemm = gndet::cpu::gemm;

namespace {

enum class Layout { kRowMajor, kColMajor, kStrided };

// A rows x cols matrix stored in `layout` (kStrided: row-major inside a buffer twice as wide and
// with every other column used), filled with uniform values in [-1, 1).
struct Stored {
  std::vector<float> data;
  gemm::Strided view;
  float at(int64_t i, int64_t j) const { return view.p[i * view.rs + j * view.cs]; }
};
Stored make(int64_t rows, int64_t cols, Layout layout, std::mt19937& rng) {
  Stored s;
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  switch (layout) {
    case Layout::kRowMajor: s.data.resize(rows * cols); break;
    case Layout::kColMajor: s.data.resize(rows * cols); break;
    case Layout::kStrided: s.data.resize(rows * cols * 2); break;
  }
  for (float& v : s.data) v = u(rng);
  const int64_t rs = layout == Layout::kRowMajor ? cols : layout == Layout::kColMajor ? 1 : 2 * cols;
  const int64_t cs = layout == Layout::kRowMajor ? 1 : layout == Layout::kColMajor ? rows : 2;
  s.view = {s.data.data(), rs, cs};
  return s;
}

struct Case {
  int64_t M, N, K;
  Layout a, b;
  bool accumulate, bias, pieces;
};

void check(const Case& c, std::mt19937& rng) {
  const Stored A = make(c.M, c.K, c.a, rng), B = make(c.K, c.N, c.b, rng);
  const int64_t ldc = c.N + 5;  // C is a block of a wider matrix: nothing beside it may change
  std::vector<float> C(c.M * ldc), bias(c.M);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (float& v : bias) v = u(rng);
  for (int64_t i = 0; i < c.M; ++i) {
    for (int64_t j = 0; j < ldc; ++j) C[i * ldc + j] = j < c.N && !c.accumulate ? std::numeric_limits<float>::quiet_NaN() : u(rng);
  }
  const std::vector<float> before = C;
  const float* row_bias = c.bias ? bias.data() : nullptr;
  if (c.pieces) {  // B by rows copied into the scratch, as im2col does
    auto row = [&](int64_t k, int64_t n0, int64_t n, float* scratch) {
      for (int64_t j = 0; j < n; ++j) scratch[j] = B.at(k, n0 + j);
      return static_cast<const float*>(scratch);
    };
    auto column = [&](int64_t n, int64_t k0, int64_t kc, float* scratch) {
      for (int64_t k = 0; k < kc; ++k) scratch[k] = B.at(k0 + k, n);
      return static_cast<const float*>(scratch);
    };
    if (c.b == Layout::kColMajor) {
      gemm::sgemm(c.M, c.N, c.K, A.view, gemm::BSource{gemm::BSource::Kind::kColumns, column}, C.data(), ldc, c.accumulate, row_bias);
    } else {
      gemm::sgemm(c.M, c.N, c.K, A.view, gemm::BSource{gemm::BSource::Kind::kRows, row}, C.data(), ldc, c.accumulate, row_bias);
    }
  } else {
    gemm::sgemm(c.M, c.N, c.K, A.view, B.view, C.data(), ldc, c.accumulate, row_bias);
  }
  double worst = 0.0;
  bool outside_untouched = true;
  for (int64_t i = 0; i < c.M; ++i) {
    for (int64_t j = 0; j < ldc; ++j) {
      const float got = C[i * ldc + j];
      if (j >= c.N) {
        outside_untouched = outside_untouched && got == before[i * ldc + j];
        continue;
      }
      double want = (c.accumulate ? before[i * ldc + j] : 0.0) + (c.bias ? bias[i] : 0.0);
      for (int64_t k = 0; k < c.K; ++k) want += static_cast<double>(A.at(i, k)) * B.at(k, j);
      worst = std::isnan(got) ? INFINITY : std::max(worst, std::abs(got - want));
    }
  }
  INFO("M " << c.M << " N " << c.N << " K " << c.K << " A layout " << int(c.a) << " B layout " << int(c.b)
            << " accumulate " << c.accumulate << " bias " << c.bias << " pieces " << c.pieces);
  CHECK(outside_untouched);
  // float32 sums of K + 2 products of values in [-1, 1): each partial sum is off by at most
  // 2^-24 of a magnitude <= K + 2, so K (K + 2) 2^-24 bounds the error (Higham's gamma_K); the
  // observed errors are ~sqrt(K) 2^-24 times the sums' size, far below it.
  const double bound = static_cast<double>(c.K + 2) * (c.K + 2) * std::ldexp(1.0, -24);
  CHECK(worst <= bound);
}

}  // namespace

TEST_CASE("float32 GEMM equals a double loop at every edge of its blocking", "[ops][gemm]") {
  std::mt19937 rng(20261206);
  const Layout layouts[] = {Layout::kRowMajor, Layout::kColMajor, Layout::kStrided};
  // (M, N, K): one micro-tile; edges in M, N and K; two column blocks (N > 960) with uneven
  // remainders; three K blocks (K > 2 x 256) with a remainder; a single row and column; K = 0;
  // last panels one and two vectors wide (N = 64, 80, 147: 48 + 16, 48 + 32, 3 x 48 + 16).
  const int64_t sizes[][3] = {{8, 48, 16},  {13, 50, 7},  {1, 1, 1},      {31, 97, 300}, {17, 1000, 33},
                              {9, 130, 600}, {64, 200, 0}, {40, 1943, 70}, {3, 5, 513},
                              {16, 80, 40}, {24, 64, 300}, {8, 147, 260}};
  for (const auto& s : sizes) {
    for (Layout a : layouts) {
      for (Layout b : layouts) {
        const bool pieces = a == Layout::kRowMajor && b != Layout::kStrided;
        check({s[0], s[1], s[2], a, b, /*accumulate=*/false, /*bias=*/false, false}, rng);
        check({s[0], s[1], s[2], a, b, /*accumulate=*/true, /*bias=*/a == Layout::kColMajor, false}, rng);
        if (pieces) check({s[0], s[1], s[2], a, b, /*accumulate=*/false, /*bias=*/true, true}, rng);
      }
    }
  }
}

TEST_CASE("float32 GEMM with A already packed gives the same bits as packing it on the way", "[ops][gemm]") {
  if (!gemm::available()) return gndet::test::skip("this build has no AVX-512 GEMM (it falls back to Eigen)");
  std::mt19937 rng(61206);
  // Rows not a multiple of 8 (the packed rows past M are zero), K with one, two and three blocks;
  // B's rows in memory, so the micro-kernels ask for the next block's lines: blocks of kNcAhead
  // columns, an uneven last one, with one and three K blocks (the next block below, or to the right).
  const int64_t sizes[][3] = {{8, 48, 16}, {13, 50, 7}, {31, 97, 300}, {9, 130, 600}, {256, 144, 256},
                              {64, 1000, 256}, {20, 977, 513}};
  for (const auto& s : sizes) {
    const int64_t M = s[0], N = s[1], K = s[2];
    INFO("M " << M << " N " << N << " K " << K);
    const Stored A = make(M, K, Layout::kRowMajor, rng), B = make(K, N, Layout::kRowMajor, rng);
    std::vector<float> packed(gemm::packed_a_size(M, K), 0.0f);
    for (int64_t i = 0; i < M; ++i) {
      for (int64_t k = 0; k < K; ++k) packed[gemm::packed_a_index(i, k, K)] = A.at(i, k);
    }
    for (const bool accumulate : {false, true}) {
      std::vector<float> want(M * N), got(M * N);
      std::uniform_real_distribution<float> u(-1.0f, 1.0f);
      for (float& v : want) v = accumulate ? u(rng) : std::numeric_limits<float>::quiet_NaN();
      got = want;
      std::vector<float> bias(M);
      for (float& v : bias) v = u(rng);
      const float* row_bias = accumulate ? bias.data() : nullptr;  // with and without
      gemm::sgemm(M, N, K, A.view, B.view, want.data(), N, accumulate, row_bias);
      gemm::sgemm(M, N, K, gemm::PackedA{packed.data()}, B.view, got.data(), N, accumulate, row_bias);
      CHECK(got == want);
      CHECK(std::none_of(got.begin(), got.end(), [](float v) { return std::isnan(v); }));
    }
  }
}
