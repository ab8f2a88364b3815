// float32 GEMM of the CPU kernels: C (M x N, row-major) = A (M x K) * B (K x N) [+ C] [+ a bias per
// row of C], on one thread (callers split the work over their own OpenMP team).
//
// Why our own: Eigen's GEMM reaches 180-210 GFLOP/s of this machine's ~320 (2 cores, AVX-512, two
// FMA units each), and it needs B as a matrix in memory, so a convolution first writes its whole
// im2col matrix and Eigen then copies it once more into its packed panels. Here B is described by
// a function that hands out pieces of its rows or columns, so im2col happens while B is packed
// (conv.cpp), and the micro-kernel is written for AVX-512.
//
// The algorithm is the one of BLIS / GotoBLAS: B is packed a (kKc x kNc) block at a time into
// panels kNr columns wide (the last one of a block only as many 16-float vectors wide as it needs;
// the block stays in L2), A kMr rows at a time into a (kKc x kMr) panel
// (in L1), and a micro-kernel keeps a kMr x kNr tile of C in 24 vector registers while it runs
// over the kKc products. Edges are padded with zeros in the panels and masked when C is stored.
//
// Without AVX-512 at compile time (-Dnative_arch=false, another CPU) available() is false and the
// callers keep Eigen.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

namespace gndet::cpu::gemm {

// True where this build has the AVX-512 micro-kernel (and GNDET_GEMM=eigen is not set).
bool available();

// A non-owning reference to a callable, for the B sources below (no allocation, no virtual call
// per element: one call per row or column piece).
template <class Signature>
class FunctionRef;
template <class R, class... Args>
class FunctionRef<R(Args...)> {
 public:
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef>>>
  FunctionRef(F&& f) : object_(const_cast<void*>(static_cast<const void*>(&f))) {  // NOLINT: implicit on purpose
    call_ = [](void* o, Args... args) -> R { return (*static_cast<std::remove_reference_t<F>*>(o))(std::forward<Args>(args)...); };
  }
  R operator()(Args... args) const { return call_(object_, std::forward<Args>(args)...); }

 private:
  void* object_;
  R (*call_)(void*, Args...);
};

// A matrix in memory: element (i, j) at p[i * rs + j * cs].
struct Strided {
  const float* p;
  int64_t rs, cs;
};

// The right operand B, given by pieces. Exactly one of the two is used, whichever is contiguous
// where B comes from: `row(k, n0, n, scratch)` returns B(k, n0 .. n0 + n) as n consecutive floats,
// `column(n, k0, kc, scratch)` returns B(k0 .. k0 + kc, n); either may fill `scratch` (room for
// kNc, respectively kKc, floats) and return it, or return a pointer into memory it already has.
struct BSource {
  enum class Kind { kRows, kColumns } kind;
  FunctionRef<const float*(int64_t, int64_t, int64_t, float*)> piece;
};

// C = A * B, or C += A * B when `accumulate`; `row_bias` (M values, may be null) is added to each row
// of C (with accumulate, too). A is any strided matrix; A and B must not overlap C.
void sgemm(int64_t M, int64_t N, int64_t K, const Strided& a, const BSource& b, float* c, int64_t ldc, bool accumulate,
           const float* row_bias = nullptr);

// The same for B in memory, with whichever of its strides is 1 (else element by element).
void sgemm(int64_t M, int64_t N, int64_t K, const Strided& a, const Strided& b, float* c, int64_t ldc, bool accumulate,
           const float* row_bias = nullptr);

// A already in the micro-kernel's panels, for an A that many products share (Winograd's
// transformed kernels, one per chunk of tiles): element (i, k) at p[((i / kMr) * K + k) * kMr + i % kMr],
// rows up to M rounded up to kMr present (zeros past M). packed_a_index says where (i, k) goes.
struct PackedA {
  const float* p;
};
void sgemm(int64_t M, int64_t N, int64_t K, const PackedA& a, const Strided& b, float* c, int64_t ldc, bool accumulate,
           const float* row_bias = nullptr);
void sgemm(int64_t M, int64_t N, int64_t K, const PackedA& a, const BSource& b, float* c, int64_t ldc, bool accumulate,
           const float* row_bias = nullptr);
// Writes panel `panel` of an M x K matrix A (its rows [panel kMr, panel kMr + kMr), all K columns)
// where the PackedA layout puts it, in `packed`: for an A that many products share, packed once
// (its panels may be split between threads).
void pack_a_panel(const Strided& a, int64_t M, int64_t K, int64_t panel, float* packed);

// Blocking (see above). kNr is three AVX-512 vectors.
inline constexpr int64_t kMr = 8;
inline constexpr int64_t kNr = 48;
// kKc: an A panel (kMr x kKc, 8 KB) stays in L1 while the B block (kKc x kNc, 960 KB) stays in L2
// (2 MB per core here). Single-threaded on this machine's square and conv-shaped products,
// 256 x 960 was within the run-to-run noise (~5%) of the best of 128 to 512 deep, 480 to 1920 wide.
inline constexpr int64_t kKc = 256;
inline constexpr int64_t kNc = 960;
// Where B lies in memory with contiguous rows (sgemm with PackedA and Strided B: the 1 x 1
// convolutions' x or dy, Winograd's transformed tiles), the micro-kernels ask for the next block's
// lines while they run, so that packing it reads L2: blocks half as wide, so that the packed block
// and the next one's source fit in L2 together. (layer1's 1 x 1 256 -> 64 forward 1.16-1.24x,
// bench/results/cpu_layers.md, 2026-12-07 22:40 UTC.)
inline constexpr int64_t kNcAhead = 480;

inline int64_t packed_a_index(int64_t i, int64_t k, int64_t K) { return ((i / kMr) * K + k) * kMr + i % kMr; }
inline int64_t packed_a_size(int64_t M, int64_t K) { return (M + kMr - 1) / kMr * kMr * K; }

}  // namespace gndet::cpu::gemm
