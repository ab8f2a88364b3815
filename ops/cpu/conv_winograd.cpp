// Winograd F(4x4, 3x3): see conv_winograd.h for what and why.
//
// Layout. Output tiles (4x4 blocks of y) are numbered over (image, tile row, tile column) and
// processed in chunks; each thread takes whole chunks. For a chunk of T tiles the thread builds
// V (36, C_in, T): the transformed input blocks, position-major, so that V's slice for position xi
// is the (C_in, T) right operand of that position's GEMM; then M (36, C_out, T) = U * V slice by
// slice; then transforms each tile's 36 values of M back into its 4x4 outputs. The transforms run
// on 16 tiles at a time, one per SIMD lane (the loops over `kLanes` vectorise).
//
// With -march=native, GCC 12 warns that its own AVX-512 intrinsics use '__Y' uninitialised where
// Eigen's GEMM kernels are inlined into this file: a known false positive (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "ops/cpu/conv_winograd.h"

#include <Eigen/Core>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <omp.h>
#include <vector>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "ops/cpu/gemm.h"
#include "tensor/factory.h"

namespace gndet::winograd {
namespace {

constexpr int kOut = 4;        // m: outputs per tile side
constexpr int kIn = kOut + 2;  // alpha: inputs per tile side
constexpr int kPositions = kIn * kIn;
constexpr int kLanes = 16;       // tiles transformed together
// Tiles per chunk, shared by the threads (run, run_weight_gradient): 256, 128 per thread on this
// project's 2 cores. (When each thread had chunks of its own, 256 tiles beat 128 in bench/cpu_layers
// but lost in the whole model, training 1-7% slower in 5 of 5 alternated pairs, 2026-12-06: likely
// the twice larger scratch per thread competing with the layers' own data for L3. Shared, the
// scratch in all is what two threads' 128-tile chunks had.)
constexpr int64_t kChunkShared = 256;
// With 32 channels each way (the demo's heads), 32-tile chunks ran 1.25x faster than 128-tile ones
// in the weight gradient and no slower elsewhere (bench/cpu_layers --demo, GFLOP/s relative to the
// same run's GEMM peak: 0.58-0.69 against 0.46-0.52).
// At 64 channels each way it made no difference (ResNet's layer1 3x3: 1.05-1.15 against 1.11-1.16),
// so the zoo's convolutions keep kChunkShared. (Measured when each thread had chunks of its own.)
constexpr int64_t kSmallChunk = 32;
constexpr int64_t kSmallChannels = 64;  // C_in + C_out at or below which kSmallChunk applies
// Below these the transforms (the kernels' above all, once per call) and narrow GEMMs outweigh the
// saved multiplications (bench/cpu_layers: a 14x14 map of 2 images, 32 tiles, ran at 0.7x direct).
constexpr int64_t kMinChannels = 16;
constexpr int64_t kMinTiles = 64;
// The weight gradient also sums and transforms back a (36, C_out, C_in) buffer (one per thread
// when this was measured): ResNet's layer4 3x3 (512 channels, 77 tiles) ran at 0.6x direct, FPN's
// P4 (273) at 1.25x.
constexpr int64_t kMinTilesWeightGradient = 256;
// Tiles are located by int32 offsets (LaneGroup); larger tensors (8 GB) take direct convolution.
constexpr int64_t kMaxElements = int64_t{1} << 31;

int64_t output_tiles(const ConvGeometry& g) {
  return g.N * ((g.H_out + kOut - 1) / kOut) * ((g.W_out + kOut - 1) / kOut);
}

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Outer = Eigen::OuterStride<>;

// One 3x3 stride-1 convolution: `in` (N, C, H, W) -> `out` (N, O, Ho, Wo), input padded by (ph, pw).
struct Plan {
  int64_t N, C, H, W, O, Ho, Wo, ph, pw;
  int64_t tile_rows() const { return (Ho + kOut - 1) / kOut; }
  int64_t tile_cols() const { return (Wo + kOut - 1) / kOut; }
  int64_t tiles() const { return N * tile_rows() * tile_cols(); }
};

// The 1-D transforms, on 16 lanes at once: element i of the input is in[i * is + lane].
// B^T (input), for the interpolation points 0, 1, -1, 2, -2 and infinity.
inline void input_1d(const float* in, int64_t is, float* out, int64_t os) {
#pragma omp simd
  for (int l = 0; l < kLanes; ++l) {
    const float d0 = in[l], d1 = in[is + l], d2 = in[2 * is + l], d3 = in[3 * is + l], d4 = in[4 * is + l],
                d5 = in[5 * is + l];
    out[l] = 4.0f * d0 - 5.0f * d2 + d4;
    out[os + l] = -4.0f * (d1 + d2) + (d3 + d4);
    out[2 * os + l] = 4.0f * (d1 - d2) + (d4 - d3);
    out[3 * os + l] = 2.0f * (d3 - d1) + (d4 - d2);
    out[4 * os + l] = 2.0f * (d1 - d3) + (d4 - d2);
    out[5 * os + l] = 4.0f * d1 - 5.0f * d3 + d5;
  }
}
// A^T (output).
inline void output_1d(const float* in, int64_t is, float* out, int64_t os) {
#pragma omp simd
  for (int l = 0; l < kLanes; ++l) {
    const float m0 = in[l], m1 = in[is + l], m2 = in[2 * is + l], m3 = in[3 * is + l], m4 = in[4 * is + l],
                m5 = in[5 * is + l];
    const float s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4;
    out[l] = m0 + s12 + s34;
    out[os + l] = d12 + 2.0f * d34;
    out[2 * os + l] = s12 + 4.0f * s34;
    out[3 * os + l] = d12 + 8.0f * d34 + m5;
  }
}

// A (the transpose of A^T): spreads a 4-vector of output gradients over the 6 positions.
inline void output_adjoint_1d(const float* in, int64_t is, float* out, int64_t os) {
#pragma omp simd
  for (int l = 0; l < kLanes; ++l) {
    const float y0 = in[l], y1 = in[is + l], y2 = in[2 * is + l], y3 = in[3 * is + l];
    const float s02 = y0 + y2, s13 = y1 + y3, s02_4 = y0 + 4.0f * y2, s13_8 = 2.0f * y1 + 8.0f * y3;
    out[l] = y0;
    out[os + l] = s02 + s13;
    out[2 * os + l] = s02 - s13;
    out[3 * os + l] = s02_4 + s13_8;
    out[4 * os + l] = s02_4 - s13_8;
    out[5 * os + l] = y3;
  }
}

// G: spreads a 3-tap kernel over the 6 positions (kernel transform U = G k G^T).
constexpr double G[kIn][3] = {{1.0 / 4, 0, 0},           {-1.0 / 6, -1.0 / 6, -1.0 / 6}, {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                              {1.0 / 24, 1.0 / 12, 1.0 / 6}, {1.0 / 24, -1.0 / 12, 1.0 / 6},   {0, 0, 1}};

// U_xi (O, C) = G k G^T for every kernel k (O, C, 3, 3), in double, rounded once, 36 of them: as
// (36, O, C) for Eigen, or (packed) each U_xi already in gemm.h's A panels, since every chunk of
// tiles multiplies by the same U_xi (sgemm's packing fell from 8.9% to 3.6% of a box-head benchmark's
// perf samples, bench/results/cpu_layers.md).
// Vectorised over blocks of input channels: done once per call, it must cost little next to the GEMMs.
int64_t kernels_size(int64_t O, int64_t C, bool packed) {
  return packed ? cpu::gemm::packed_a_size(O, C) : O * C;
}
Tensor transform_kernels(const float* k, int64_t O, int64_t C, bool adjoint, bool packed) {
  constexpr int kBlock = 16;
  const int64_t per_xi = kernels_size(O, C, packed);
  // From the host-block cache: no page faults. Packed rows past O stay zero.
  Tensor U = packed && O % cpu::gemm::kMr != 0 ? zeros({kPositions * per_xi}) : empty({kPositions * per_xi});
  float* u = U.data<float>();
#pragma omp parallel for schedule(static) if (O * C >= 4096)
  for (int64_t o = 0; o < O; ++o) {
    for (int64_t c0 = 0; c0 < C; c0 += kBlock) {
      const int64_t n = std::min<int64_t>(kBlock, C - c0);
      // The forward kernel is k[o][c]; the input gradient's is k[c][o] rotated by 180 degrees.
      double g[3][3][kBlock] = {};
      for (int64_t l = 0; l < n; ++l) {
        const int64_t c = c0 + l;
        for (int i = 0; i < 3; ++i) {
          for (int j = 0; j < 3; ++j) {
            g[i][j][l] = adjoint ? k[((c * O + o) * 3 + 2 - i) * 3 + 2 - j] : k[((o * C + c) * 3 + i) * 3 + j];
          }
        }
      }
      double t[kIn][3][kBlock];  // G g
      for (int a = 0; a < kIn; ++a) {
        for (int j = 0; j < 3; ++j) {
#pragma omp simd
          for (int l = 0; l < kBlock; ++l) t[a][j][l] = G[a][0] * g[0][j][l] + G[a][1] * g[1][j][l] + G[a][2] * g[2][j][l];
        }
      }
      for (int a = 0; a < kIn; ++a) {
        for (int b = 0; b < kIn; ++b) {
          alignas(64) float v[kBlock];
#pragma omp simd
          for (int l = 0; l < kBlock; ++l) v[l] = static_cast<float>(t[a][0][l] * G[b][0] + t[a][1][l] * G[b][1] + t[a][2][l] * G[b][2]);
          float* u_xi = u + (a * kIn + b) * per_xi;
          if (packed) {
            for (int64_t l = 0; l < n; ++l) u_xi[cpu::gemm::packed_a_index(o, c0 + l, C)] = v[l];
          } else {
            std::memcpy(u_xi + o * C + c0, v, static_cast<size_t>(n) * sizeof(float));
          }
        }
      }
    }
  }
  return U;
}

// Where the 16 tiles of one lane group lie, worked out once per chunk and used for every channel
// (locating a tile takes three divisions: per tile and channel they were a visible share of the
// transforms). Offsets are from channel 0's plane of image 0, in elements (int32: applies()
// keeps tensors below 2^31 elements). A dead lane (past the chunk's last tile) has its positions
// far outside the map, so that every bound check fails and it reads and writes nothing.
struct LaneGroup {
  alignas(64) int32_t in_off[kLanes];   // n C H W + y0 W + x0: the input window's top-left
  alignas(64) int32_t y0[kLanes];       // the window's top-left row and column (negative: padding)
  alignas(64) int32_t x0[kLanes];
  alignas(64) int32_t out_off[kLanes];  // n O Ho Wo + oy Wo + ox: the tile's first output
  alignas(64) int32_t oy[kLanes];
  alignas(64) int32_t ox[kLanes];
};
constexpr int32_t kFarOutside = -(int32_t{1} << 24);

// The lane groups of tiles [t0, t0 + nt).
void locate_lanes(const Plan& p, int64_t t0, int64_t nt, std::vector<LaneGroup>& groups) {
  groups.resize(static_cast<size_t>((nt + kLanes - 1) / kLanes));
  const int64_t per_image = p.tile_rows() * p.tile_cols();
  for (int64_t k = 0; k < static_cast<int64_t>(groups.size()) * kLanes; ++k) {
    LaneGroup& g = groups[static_cast<size_t>(k / kLanes)];
    const int64_t l = k % kLanes;
    if (k >= nt) {
      g.in_off[l] = g.out_off[l] = 0;
      g.y0[l] = g.x0[l] = g.oy[l] = g.ox[l] = kFarOutside;
      continue;
    }
    const int64_t t = t0 + k, n = t / per_image, r = (t % per_image) / p.tile_cols(), c = t % p.tile_cols();
    const int64_t y0 = r * kOut - p.ph, x0 = c * kOut - p.pw, oy = r * kOut, ox = c * kOut;
    g.y0[l] = static_cast<int32_t>(y0);
    g.x0[l] = static_cast<int32_t>(x0);
    g.in_off[l] = static_cast<int32_t>(n * p.C * p.H * p.W + y0 * p.W + x0);
    g.oy[l] = static_cast<int32_t>(oy);
    g.ox[l] = static_cast<int32_t>(ox);
    g.out_off[l] = static_cast<int32_t>(n * p.O * p.Ho * p.Wo + oy * p.Wo + ox);
  }
}

// d[i][j][lane] = the (rows x cols) window at each lane's (off, y, x) in `plane`, rows ld apart,
// zero outside [0, H) x [0, W) (padding, edge tiles, dead lanes). AVX-512: one masked gather per
// (i, j) instead of 16 scalar loads and their bound checks.
template <int kRows, int kCols>
void gather_windows(const float* plane, const int32_t* off, const int32_t* y, const int32_t* x, int64_t H, int64_t W,
                    int64_t ld, float (*d)[kCols][kLanes]) {
#if defined(__AVX512F__)
  const __m512i voff = _mm512_load_si512(off), vy = _mm512_load_si512(y), vx = _mm512_load_si512(x);
  const __m512i vH = _mm512_set1_epi32(static_cast<int32_t>(H)), vW = _mm512_set1_epi32(static_cast<int32_t>(W));
  for (int i = 0; i < kRows; ++i) {
    // Unsigned compares: a negative row or column is a huge unsigned one, so one compare checks both ends.
    const __mmask16 row_ok = _mm512_cmplt_epu32_mask(_mm512_add_epi32(vy, _mm512_set1_epi32(i)), vH);
    const __m512i row = _mm512_add_epi32(voff, _mm512_set1_epi32(static_cast<int32_t>(i * ld)));
    for (int j = 0; j < kCols; ++j) {
      const __mmask16 ok = _mm512_mask_cmplt_epu32_mask(row_ok, _mm512_add_epi32(vx, _mm512_set1_epi32(j)), vW);
      const __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), ok, _mm512_add_epi32(row, _mm512_set1_epi32(j)), plane, 4);
      _mm512_store_ps(d[i][j], v);
    }
  }
#else
  for (int l = 0; l < kLanes; ++l) {
    for (int i = 0; i < kRows; ++i) {
      for (int j = 0; j < kCols; ++j) {
        const int64_t yy = int64_t{y[l]} + i, xx = int64_t{x[l]} + j;
        d[i][j][l] = yy >= 0 && yy < H && xx >= 0 && xx < W ? plane[off[l] + i * ld + j] : 0.0f;
      }
    }
  }
#endif
}

// V[., c, l0 .. l0+16) for channel c of the lane group's tiles (dead lanes: zeros).
void transform_input(const Plan& p, const float* in, int64_t c, const LaneGroup& lanes, int64_t l0, float* V,
                     int64_t ldv) {
  alignas(64) float d[kIn][kIn][kLanes];
  alignas(64) float t[kIn][kIn][kLanes];
  gather_windows<kIn, kIn>(in + c * p.H * p.W, lanes.in_off, lanes.y0, lanes.x0, p.H, p.W, p.W, d);
  for (int j = 0; j < kIn; ++j) input_1d(&d[0][j][0], kIn * kLanes, &t[0][j][0], kIn * kLanes);  // columns
  for (int i = 0; i < kIn; ++i) {
    alignas(64) float v[kIn][kLanes];
    input_1d(&t[i][0][0], kLanes, &v[0][0], kLanes);  // rows
    for (int j = 0; j < kIn; ++j) std::memcpy(V + ((i * kIn + j) * p.C + c) * ldv + l0, v[j], sizeof(v[j]));
  }
}

// The 4x4 outputs of channel o for the lane group's tiles from M[., o, l0 .. l0+16), plus the
// bias; outputs past the map's edge (and dead lanes) are not written.
void transform_output(const Plan& p, const float* M, int64_t ldm, int64_t o, const LaneGroup& lanes, int64_t l0,
                      float bias, float* out) {
  alignas(64) float m[kIn][kIn][kLanes];
  alignas(64) float t[kOut][kIn][kLanes];
  alignas(64) float y[kOut][kOut][kLanes];
  for (int i = 0; i < kIn; ++i) {
    for (int j = 0; j < kIn; ++j) std::memcpy(m[i][j], M + ((i * kIn + j) * p.O + o) * ldm + l0, sizeof(m[i][j]));
  }
  for (int j = 0; j < kIn; ++j) output_1d(&m[0][j][0], kIn * kLanes, &t[0][j][0], kIn * kLanes);
  for (int i = 0; i < kOut; ++i) output_1d(&t[i][0][0], kLanes, &y[i][0][0], kLanes);
  float* plane = out + o * p.Ho * p.Wo;
#if defined(__AVX512F__)
  const __m512i voff = _mm512_load_si512(lanes.out_off), vy = _mm512_load_si512(lanes.oy), vx = _mm512_load_si512(lanes.ox);
  const __m512i vH = _mm512_set1_epi32(static_cast<int32_t>(p.Ho)), vW = _mm512_set1_epi32(static_cast<int32_t>(p.Wo));
  const __m512 vb = _mm512_set1_ps(bias);
  for (int i = 0; i < kOut; ++i) {
    const __mmask16 row_ok = _mm512_cmplt_epu32_mask(_mm512_add_epi32(vy, _mm512_set1_epi32(i)), vH);
    const __m512i row = _mm512_add_epi32(voff, _mm512_set1_epi32(static_cast<int32_t>(i * p.Wo)));
    for (int j = 0; j < kOut; ++j) {
      const __mmask16 ok = _mm512_mask_cmplt_epu32_mask(row_ok, _mm512_add_epi32(vx, _mm512_set1_epi32(j)), vW);
      _mm512_mask_i32scatter_ps(plane, ok, _mm512_add_epi32(row, _mm512_set1_epi32(j)),
                                _mm512_add_ps(_mm512_load_ps(y[i][j]), vb), 4);
    }
  }
#else
  for (int l = 0; l < kLanes; ++l) {
    if (lanes.oy[l] < 0) continue;  // dead lane
    const int64_t rows = std::min<int64_t>(kOut, p.Ho - lanes.oy[l]), cols = std::min<int64_t>(kOut, p.Wo - lanes.ox[l]);
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t j = 0; j < cols; ++j) plane[lanes.out_off[l] + i * p.Wo + j] = y[i][j][l] + bias;
    }
  }
#endif
}

// D[., o, l0 .. l0+16) = A dy A^T for channel o of the output gradient of the lane group's
// tiles: the adjoint of transform_output (outputs beyond the map's edge have no gradient: zeros).
void transform_output_gradient(const Plan& p, const float* dy, int64_t o, const LaneGroup& lanes, int64_t l0, float* D,
                               int64_t ldd) {
  alignas(64) float d[kOut][kOut][kLanes];
  alignas(64) float t[kIn][kOut][kLanes];
  gather_windows<kOut, kOut>(dy + o * p.Ho * p.Wo, lanes.out_off, lanes.oy, lanes.ox, p.Ho, p.Wo, p.Wo, d);
  for (int j = 0; j < kOut; ++j) output_adjoint_1d(&d[0][j][0], kOut * kLanes, &t[0][j][0], kOut * kLanes);
  for (int i = 0; i < kIn; ++i) {
    alignas(64) float v[kIn][kLanes];
    output_adjoint_1d(&t[i][0][0], kLanes, &v[0][0], kLanes);
    for (int j = 0; j < kIn; ++j) std::memcpy(D + ((i * kIn + j) * p.O + o) * ldd + l0, v[j], sizeof(v[j]));
  }
}

// Chunks of at most `most` tiles, of equal sizes in whole lane groups.
int64_t chunk_size(int64_t tiles, int64_t most) {
  const int64_t chunks = (tiles + most - 1) / most;
  return ((tiles + chunks - 1) / chunks + kLanes - 1) / kLanes * kLanes;
}

// out = the convolution of `in` by the kernels U (transform_kernels, packed when
// cpu::gemm::available()), plus the bias. Like the weight gradient below, the threads share each
// chunk of tiles: they transform its input by channels, split the 36 products by xi and transform
// the outputs back by channels, meeting in between. Each product then multiplies its U_xi by twice
// the tiles that a thread's own chunk of 128 had (the forward read all of U, 9.4 MB at 256
// channels, per chunk), and a map of 273 tiles splits evenly instead of 2 chunks to 1.
void run(const Plan& p, const float* U, const float* in, const float* bias, float* out) {
  const int64_t tiles = p.tiles();
  const int64_t chunk = chunk_size(tiles, p.C + p.O <= kSmallChannels ? kSmallChunk : kChunkShared);
  const int64_t chunks = (tiles + chunk - 1) / chunk;
  const int64_t v_size = kPositions * p.C * chunk, m_size = kPositions * p.O * chunk;
  const Tensor scratch = empty({v_size + m_size});
  float* V = scratch.data<float>();
  float* M = V + v_size;
#pragma omp parallel
  {
    std::vector<LaneGroup> lanes;  // each thread locates the chunk's tiles for itself
    for (int64_t ci = 0; ci < chunks; ++ci) {
      const int64_t t0 = ci * chunk, nt = std::min(chunk, tiles - t0);
      const int64_t width = (nt + kLanes - 1) / kLanes * kLanes;  // the GEMMs' columns: whole lane groups
      locate_lanes(p, t0, nt, lanes);
      // Each barrier (the end of an omp for) orders one phase's writes before the next one's reads,
      // the last one the output transforms' reads of M before the next chunk's products write it.
#pragma omp for schedule(static)
      for (int64_t c = 0; c < p.C; ++c) {
        for (int64_t l0 = 0; l0 < nt; l0 += kLanes) transform_input(p, in, c, lanes[l0 / kLanes], l0, V, chunk);
      }
#pragma omp for schedule(static)
      for (int xi = 0; xi < kPositions; ++xi) {
        if (cpu::gemm::available()) {
          cpu::gemm::sgemm(p.O, width, p.C, cpu::gemm::PackedA{U + xi * kernels_size(p.O, p.C, true)},
                           {V + xi * p.C * chunk, chunk, 1}, M + xi * p.O * chunk, chunk, /*accumulate=*/false);
          continue;
        }
        Eigen::Map<const RowMat> Ux(U + xi * p.O * p.C, p.O, p.C);
        Eigen::Map<const RowMat, 0, Outer> Vx(V + xi * p.C * chunk, p.C, width, Outer(chunk));
        Eigen::Map<RowMat, 0, Outer> Mx(M + xi * p.O * chunk, p.O, width, Outer(chunk));
        Mx.noalias() = Ux * Vx;
      }
#pragma omp for schedule(static)
      for (int64_t o = 0; o < p.O; ++o) {
        for (int64_t l0 = 0; l0 < nt; l0 += kLanes) {
          transform_output(p, M, chunk, o, lanes[l0 / kLanes], l0, bias != nullptr ? bias[o] : 0.0f, out);
        }
      }
    }
  }
}

// dw (O, C, 3, 3) = the weight gradient of the convolution `p` of x, for its output gradient dy.
// y = A^T [U . V] A is linear in U, so dU_xi (O, C) = sum over tiles of D_xi (O, T) V_xi (C, T)^T,
// with D = A dy A^T per tile (transform_output_gradient), and dw = G^T dU G, in double.
//
// The threads share each chunk of tiles: they transform it together (by channels), then split
// the 36 products by xi, each thread adding into its own xi's rows of the one dU. Summing per
// thread over its own chunks instead (as the forward splits its work) made every thread sweep a
// whole (36, O, C) dU, 9.4 MB at 256 channels, once per chunk of 128 tiles: the box head's weight
// gradient ran at 0.66 of its forward's rate. Here a thread sweeps half of dU per chunk of twice
// the tiles, and no per-thread sums are added up at the end. Each dU_xi sums the chunks in order
// whichever thread owns it, so the result does not depend on the thread count.
void run_weight_gradient(const Plan& p, const float* x, const float* dy, float* dw) {
  const int64_t tiles = p.tiles();
  const int64_t chunk = chunk_size(tiles, p.C + p.O <= kSmallChannels ? kSmallChunk : kChunkShared);
  const int64_t chunks = (tiles + chunk - 1) / chunk;
  const int64_t u_size = kPositions * p.O * p.C;
  const int64_t v_size = kPositions * p.C * chunk, d_size = kPositions * p.O * chunk;
  // Not zeroed: the first chunk writes the sums, later ones add (the same values: 0 + s == s).
  const Tensor dU_all = empty({u_size});
  const Tensor scratch = empty({v_size + d_size});
  float* dU = dU_all.data<float>();
  float* V = scratch.data<float>();
  float* D = V + v_size;
#pragma omp parallel
  {
    std::vector<LaneGroup> lanes;  // each thread locates the chunk's tiles for itself: no barrier
    for (int64_t ci = 0; ci < chunks; ++ci) {
      const int64_t t0 = ci * chunk, nt = std::min(chunk, tiles - t0);
      const int64_t width = (nt + kLanes - 1) / kLanes * kLanes;  // dead lanes are zero in V and D
      locate_lanes(p, t0, nt, lanes);
#pragma omp for schedule(static) nowait
      for (int64_t c = 0; c < p.C; ++c) {
        for (int64_t l0 = 0; l0 < nt; l0 += kLanes) transform_input(p, x, c, lanes[l0 / kLanes], l0, V, chunk);
      }
#pragma omp for schedule(static)
      for (int64_t o = 0; o < p.O; ++o) {
        for (int64_t l0 = 0; l0 < nt; l0 += kLanes) transform_output_gradient(p, dy, o, lanes[l0 / kLanes], l0, D, chunk);
      }
      // The barrier above: the chunk is transformed. The one below: the products have read it
      // before the next chunk's transforms overwrite it.
#pragma omp for schedule(static)
      for (int xi = 0; xi < kPositions; ++xi) {
        if (cpu::gemm::available()) {  // V_xi transposed: its rows are the product's columns
          cpu::gemm::sgemm(p.O, p.C, width, {D + xi * p.O * chunk, chunk, 1}, {V + xi * p.C * chunk, 1, chunk},
                           dU + xi * p.O * p.C, p.C, /*accumulate=*/ci > 0);
          continue;
        }
        Eigen::Map<RowMat> dUx(dU + xi * p.O * p.C, p.O, p.C);
        Eigen::Map<const RowMat, 0, Outer> Dx(D + xi * p.O * chunk, p.O, width, Outer(chunk));
        Eigen::Map<const RowMat, 0, Outer> Vx(V + xi * p.C * chunk, p.C, width, Outer(chunk));
        if (ci == 0) {
          dUx.noalias() = Dx * Vx.transpose();
        } else {
          dUx.noalias() += Dx * Vx.transpose();
        }
      }
    }
  }
#pragma omp parallel for schedule(static) if (p.O * p.C >= 4096)
  for (int64_t o = 0; o < p.O; ++o) {
    for (int64_t c = 0; c < p.C; ++c) {
      double u[kIn][kIn];
      for (int a = 0; a < kIn; ++a) {
        for (int b = 0; b < kIn; ++b) u[a][b] = dU[((a * kIn + b) * p.O + o) * p.C + c];
      }
      for (int i = 0; i < 3; ++i) {
        double t[kIn];  // row i of G^T u
        for (int b = 0; b < kIn; ++b) {
          t[b] = 0.0;
          for (int a = 0; a < kIn; ++a) t[b] += G[a][i] * u[a][b];
        }
        for (int j = 0; j < 3; ++j) {
          double v = 0.0;
          for (int b = 0; b < kIn; ++b) v += t[b] * G[b][j];
          dw[((o * p.C + c) * 3 + i) * 3 + j] = static_cast<float>(v);
        }
      }
    }
  }
}

}  // namespace

bool enabled() {
  static const bool on = [] {
    const char* v = std::getenv("GNDET_WINOGRAD");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return on;
}

bool applies(const ConvGeometry& g) {
  return enabled() && g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.groups == 1 &&
         g.ph >= 0 && g.ph <= 2 && g.pw >= 0 && g.pw <= 2 && g.C_in >= kMinChannels && g.C_out >= kMinChannels &&
         g.H_out == g.H + 2 * g.ph - 2 && g.W_out == g.W + 2 * g.pw - 2 && g.H_out > 0 && g.W_out > 0 &&
         output_tiles(g) >= kMinTiles && g.N * g.C_in * g.H * g.W < kMaxElements &&
         g.N * g.C_out * g.H_out * g.W_out < kMaxElements;
}

bool applies_to_weight_gradient(const ConvGeometry& g) { return applies(g) && output_tiles(g) >= kMinTilesWeightGradient; }

void conv2d_forward(const ConvGeometry& g, const float* x, const float* w, const float* b, float* y) {
  const Plan p{g.N, g.C_in, g.H, g.W, g.C_out, g.H_out, g.W_out, g.ph, g.pw};
  const Tensor U = transform_kernels(w, g.C_out, g.C_in, false, cpu::gemm::available());
  run(p, U.data<float>(), x, b, y);
}

void conv2d_backward_weight(const ConvGeometry& g, const float* dy, const float* x, float* dw) {
  const Plan p{g.N, g.C_in, g.H, g.W, g.C_out, g.H_out, g.W_out, g.ph, g.pw};
  run_weight_gradient(p, x, dy, dw);
}

void conv2d_backward_input(const ConvGeometry& g, const float* dy, const float* w, float* dx) {
  const Plan p{g.N, g.C_out, g.H_out, g.W_out, g.C_in, g.H, g.W, 2 - g.ph, 2 - g.pw};
  const Tensor U = transform_kernels(w, g.C_in, g.C_out, true, cpu::gemm::available());
  run(p, U.data<float>(), dy, nullptr, dx);
}

}  // namespace gndet::winograd
