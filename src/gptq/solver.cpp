#include "lowbit/gptq/solver.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <string>

#include "common/checks.hpp"
#include "common/log.hpp"
#include "gptq/blas.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/core/parallel.hpp"
#include "lowbit/gptq/target.hpp"

namespace lowbit {
namespace {

// Rows per independent task. Fixed (not derived from the thread count) so that every
// BLAS call sees the same shapes, whatever the number of threads: same bytes out.
// 256 rather than 128: every lazy-block GEMM packs its slice of H^-1 once per call,
// so twice the rows halves that copy per flop (measured: 5-8% less time per
// 4096 x 4096 solve on one thread, docs/benchmarks.md).
constexpr int64_t kRowChunk = 256;

// Columns per sub-block inside a lazy block. Column-by-column (rank-1) updates stay
// inside the sub-block; one small GEMM pushes the sub-block's errors onto the rest
// of the lazy block, so most of the in-block work runs as BLAS-3 instead of BLAS-2.
constexpr int64_t kSubBlock = 32;

using detail::dims;

// Columns per lazy block: at least the configured size, aligned to the target's
// groups so that a group never straddles a block boundary.
int64_t effective_block(int64_t block, int64_t group, int64_t cols) {
  if (group >= cols) return std::min(block, cols);
  if (group >= block) return group;
  return (block + group - 1) / group * group;
}

struct Problem {
  const GptqConfig& cfg;
  ConstMatrixView<float> w;
  std::span<const int32_t> perm;  // processing position -> original column
  std::vector<uint8_t> dead;      // by original column
  const float* hinv;              // upper factor of H^-1 in processing order, cols x cols
  int64_t cols, block, group;
};

// wt[j * nr + r] -= e[r] * h[j] for columns j in [j0, j1): the in-block part of the
// error feedback, O(rows * block^2) per block. Built for AVX-512/AVX2 next to the
// baseline (GCC/Clang function multi-versioning, chosen once at load); with
// -ffp-contract=off every version computes the same products and differences, so
// the bytes do not depend on the CPU.
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void push_error(float* wt, const float* e, const float* h, int64_t j0, int64_t j1, int64_t nr) {
  for (int64_t j = j0; j < j1; ++j) {
    const float hj = h[j];
    float* wj = wt + j * nr;
    for (int64_t r = 0; r < nr; ++r) wj[r] -= e[r] * hj;
  }
}

// The whole GPTQ sweep for rows [r0, r1): every row is independent of the others
// once H^-1 is known, so row chunks run in parallel with no shared state.
void solve_rows(const Problem& pb, GptqTarget& target, int64_t r0, int64_t r1) {
  const int64_t nr = r1 - r0, n = pb.cols, G = pb.group;
  // wt[p * nr + (r - r0)]: the current weight of row r at processing position p.
  std::vector<float> wt(static_cast<size_t>(n * nr));
  // Transposed copy in 16-row tiles, so both sides of the copy stay in cache.
  for (int64_t rb = r0; rb < r1; rb += 16) {
    const int64_t re = std::min(r1, rb + 16);
    for (int64_t p = 0; p < n; ++p) {
      const int32_t c = pb.perm[p];
      for (int64_t r = rb; r < re; ++r) wt[p * nr + (r - r0)] = pb.dead[c] ? 0.0f : pb.w(r, c);
    }
  }
  std::vector<int32_t> columns;
  if (pb.cfg.static_groups && G < n) {
    // Every group's parameters from the original weights, in original column order.
    std::vector<float> vals(static_cast<size_t>(G * nr));
    for (int64_t g = 0; g < n / G; ++g) {
      columns.resize(static_cast<size_t>(G));
      std::iota(columns.begin(), columns.end(), static_cast<int32_t>(g * G));
      for (int64_t k = 0; k < G; ++k)
        for (int64_t r = r0; r < r1; ++r) vals[k * nr + (r - r0)] = pb.dead[g * G + k] ? 0.0f : pb.w(r, g * G + k);
      target.fit_group(g, columns, r0, r1, vals.data(), nr);
    }
  }
  std::vector<float> q(static_cast<size_t>(nr)), err(static_cast<size_t>(pb.block * nr)), start;
  const int ni = static_cast<int>(n), nri = static_cast<int>(nr);
  for (int64_t i1 = 0; i1 < n; i1 += pb.block) {
    const int64_t i2 = std::min(n, i1 + pb.block), count = i2 - i1;
    if (!pb.cfg.fit_groups_on_updated_weights) start.assign(wt.begin() + i1 * nr, wt.begin() + i2 * nr);
    for (int64_t s0 = i1; s0 < i2; s0 += kSubBlock) {
      const int64_t s1 = std::min(i2, s0 + kSubBlock);
      for (int64_t p = s0; p < s1; ++p) {
        int64_t group;
        if (pb.cfg.static_groups && G < n) {
          group = pb.perm[p] / G;
        } else {
          group = p / G;
          if (p % G == 0) {
            const int64_t len = std::min(G, n - p);
            columns.assign(pb.perm.begin() + p, pb.perm.begin() + p + len);
            // Like the reference, a group that starts inside the block is fitted on the
            // block's starting values, unless the config asks for the updated weights.
            // Either way column p has every earlier column's update by now: the
            // sub-block GEMMs below run before the next sub-block starts.
            const bool from_start = !pb.cfg.fit_groups_on_updated_weights && p > i1 && p + len <= i2;
            const float* values = from_start ? &start[(p - i1) * nr] : &wt[p * nr];
            target.fit_group(group, columns, r0, r1, values, nr);
          }
        }
        float* w = &wt[p * nr];
        target.quantize_column(pb.perm[p], group, r0, r1, w, q.data());
        const float d = pb.hinv[p * n + p];
        float* e = &err[(p - i1) * nr];
        for (int64_t r = 0; r < nr; ++r) e[r] = (w[r] - q[r]) / d;
        // Push this column's error onto the rest of its sub-block.
        push_error(wt.data(), e, &pb.hinv[p * n], p + 1, s1, nr);
      }
      // The sub-block's errors onto the rest of the lazy block:
      // wt[s1:i2, :] -= Hinv[s0:s1, s1:i2]^T * err[s0:s1, :].
      if (s1 < i2)
        cblas_sgemm(LowbitRowMajor, LowbitTrans, LowbitNoTrans, static_cast<int>(i2 - s1), nri,
                    static_cast<int>(s1 - s0), -1.0f, &pb.hinv[s0 * n + s1], ni, &err[(s0 - i1) * nr], nri, 1.0f,
                    &wt[s1 * nr], nri);
    }
    // One GEMM pushes the block's errors onto every later column:
    // wt[i2:, :] -= Hinv[i1:i2, i2:]^T * err.
    if (i2 < n)
      cblas_sgemm(LowbitRowMajor, LowbitTrans, LowbitNoTrans, static_cast<int>(n - i2), nri, static_cast<int>(count),
                  -1.0f, &pb.hinv[i1 * n + i2], ni, err.data(), nri, 1.0f, &wt[i2 * nr], nri);
  }
}

}  // namespace

void GptqConfig::validate() const {
  auto fail = [](const std::string& m) { throw Error("GPTQ config: " + m); };
  if (!(damp_percent > 0) || !std::isfinite(damp_percent)) fail("damp_percent must be positive");
  if (max_damp_retries < 0) fail("max_damp_retries must be >= 0");
  if (!(damp_step > 0)) fail("damp_step must be positive");
  if (block_size < 1) fail("block_size must be >= 1");
}

double layer_output_error(ConstMatrixView<float> w, ConstMatrixView<float> q, std::span<const float> hu) {
  const int64_t rows = w.rows, n = w.cols;
  if (q.rows != rows || q.cols != n || static_cast<int64_t>(hu.size()) != n * n)
    throw Error("layer_output_error: shapes " + dims(rows, n) + ", " + dims(q.rows, q.cols) + " and a Hessian of " +
                std::to_string(hu.size()) + " entries do not match");
  std::vector<float> h(static_cast<size_t>(n * n)), e(static_cast<size_t>(rows * n)), x(e.size()), he(e.size()),
      hx(e.size());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i; j < n; ++j) h[i * n + j] = h[j * n + i] = hu[i * n + j];
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < n; ++c) x[r * n + c] = w(r, c), e[r * n + c] = w(r, c) - q(r, c);
  // E H and W H with SGEMM; the final dot products in double.
  const int ni = static_cast<int>(n), nr = static_cast<int>(rows);
  cblas_sgemm(LowbitRowMajor, LowbitNoTrans, LowbitNoTrans, nr, ni, ni, 1.0f, e.data(), ni, h.data(), ni, 0.0f, he.data(), ni);
  cblas_sgemm(LowbitRowMajor, LowbitNoTrans, LowbitNoTrans, nr, ni, ni, 1.0f, x.data(), ni, h.data(), ni, 0.0f, hx.data(), ni);
  double num = 0, den = 0;
  for (size_t i = 0; i < e.size(); ++i) num += static_cast<double>(e[i]) * he[i], den += static_cast<double>(x[i]) * hx[i];
  return den > 0 ? num / den : 0.0;
}

namespace {

constexpr int64_t kTile = 256;  // tile edge of the blocked factorisation

// In-place lower Cholesky factor of the row-major symmetric matrix a (n x n): tiles
// of kTile, every tile operation one single-threaded BLAS call of a fixed shape, the
// independent ones run in parallel. Each tile sees the same calls in the same order
// whatever the thread count, so the factor is bit-identical at any thread count
// (a multithreaded LAPACK call is not). False when a is not positive definite.
bool blocked_cholesky_lower(float* a, int64_t n) {
  const int ni = static_cast<int>(n);
  const int64_t tiles = (n + kTile - 1) / kTile;
  auto edge = [&](int64_t t) { return static_cast<int>(std::min(kTile, n - t * kTile)); };
  for (int64_t k = 0; k < tiles; ++k) {
    const int64_t k0 = k * kTile;
    const int kb = edge(k);
    int info = 0;
    // A row-major lower tile is a column-major upper one.
    spotrf_("U", &kb, a + k0 * n + k0, &ni, &info);
    if (info != 0) return false;
    parallel_for(tiles - k - 1, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = k + 1 + t0; t < k + 1 + t1; ++t)
        cblas_strsm(LowbitRowMajor, LowbitRight, LowbitLower, LowbitTrans, LowbitNonUnit, edge(t), kb, 1.0f,
                    a + k0 * n + k0, ni, a + t * kTile * n + k0, ni);
    });
    // Trailing tiles (i, j), j <= i: A_ij -= A_ik A_jk^T.
    const int64_t m = tiles - k - 1, pairs = m * (m + 1) / 2;
    parallel_for(pairs, 1, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        int64_t i = static_cast<int64_t>((std::sqrt(8.0 * static_cast<double>(p) + 1.0) - 1.0) / 2.0);
        while (i * (i + 1) / 2 > p) --i;
        while ((i + 1) * (i + 2) / 2 <= p) ++i;
        const int64_t jj = p - i * (i + 1) / 2, ti = k + 1 + i, tj = k + 1 + jj;
        float* aik = a + ti * kTile * n + k0;
        if (ti == tj)
          cblas_ssyrk(LowbitRowMajor, LowbitLower, LowbitNoTrans, edge(ti), kb, -1.0f, aik, ni, 1.0f,
                      a + ti * kTile * n + ti * kTile, ni);
        else
          cblas_sgemm(LowbitRowMajor, LowbitNoTrans, LowbitTrans, edge(ti), edge(tj), kb, -1.0f, aik, ni,
                      a + tj * kTile * n + k0, ni, 1.0f, a + ti * kTile * n + tj * kTile, ni);
      }
    });
  }
  return true;
}

// n x n floats left uninitialised: the solver's buffers are written in parallel
// phases, so a serial zero fill (std::vector's) would be wasted time on one core.
std::unique_ptr<float[]> uninitialised(int64_t n) { return std::unique_ptr<float[]>(new float[static_cast<size_t>(n * n)]); }

// U (n x n, written in full: zeros below the diagonal) from a = J H J (lower
// triangle read, overwritten by its Cholesky factor L): U(i, j) = L^-1(n-1-i, n-1-j).
// L^-1 column panel by column panel, L[c0:, c0:] X = I[c0:, c0:c1]: panels are
// independent, each one fixed-shape strsm, and each writes its band of U's columns
// directly (no full-size L^-1 in between).
bool inverse_factor_of_reversed(float* a, int64_t n, float* out) {
  if (!blocked_cholesky_lower(a, n)) return false;
  const int64_t panels = (n + kTile - 1) / kTile;
  parallel_for(panels, 1, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t c0 = q * kTile, pb = std::min(kTile, n - c0), m = n - c0;
      std::vector<float> x(static_cast<size_t>(m * pb), 0.0f);
      for (int64_t c = 0; c < pb; ++c) x[c * pb + c] = 1.0f;
      cblas_strsm(LowbitRowMajor, LowbitLeft, LowbitLower, LowbitNoTrans, LowbitNonUnit, static_cast<int>(m),
                  static_cast<int>(pb), 1.0f, a + c0 * n + c0, static_cast<int>(n), x.data(), static_cast<int>(pb));
      // Row c0 + r of L^-1 is row n-1-c0-r of U, read backwards from column n-1-c0;
      // the band's rows below its diagonal entries are zeros.
      const int64_t j0 = n - c0 - pb;  // the band is U's columns [j0, n - c0)
      for (int64_t r = 0; r < m; ++r) {
        float* dst = &out[(n - 1 - c0 - r) * n + (n - 1 - c0)];
        const float* src = &x[r * pb];
        for (int64_t c = 0; c < pb && c <= r; ++c) dst[-c] = src[c];
      }
      for (int64_t i = n - c0 - pb + 1; i < n; ++i)
        for (int64_t j = j0; j < std::min(i, n - c0); ++j) out[i * n + j] = 0.0f;
    }
  });
  for (int64_t i = 0; i < n; ++i)
    if (!(out[i * n + i] > 0) || !std::isfinite(out[i * n + i])) return false;
  return true;
}

}  // namespace

bool inverse_cholesky_upper(std::span<const float> h, int64_t n, std::vector<float>& out) {
  // a = J H J (J reverses the order; H is symmetric, so no transposition is needed).
  std::vector<float> a(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) a[i * n + j] = h[(n - 1 - i) * n + (n - 1 - j)];
  out.resize(static_cast<size_t>(n * n));
  return inverse_factor_of_reversed(a.data(), n, out.data());
}

GptqReport gptq_solve(const GptqConfig& cfg, ConstMatrixView<float> w, std::span<const float> hu, GptqTarget& target) {
  cfg.validate();
  const int64_t rows = w.rows, n = w.cols;
  if (rows < 1 || n < 1 || w.data == nullptr || w.stride < n)
    throw Error("GPTQ: bad weight matrix " + dims(rows, n));
  if (static_cast<int64_t>(hu.size()) != n * n)
    throw Error("GPTQ: the Hessian has " + std::to_string(hu.size()) + " entries, a layer with " + std::to_string(n) +
                " inputs needs " + dims(n, n));
  // H (the caller's), the factorisation's buffer and U; with act-order also H
  // permuted; the weights twice (the caller's and the target's).
  check_memory_fits(4.0 * ((cfg.act_order ? 4.0 : 3.0) * n * n + 2.0 * rows * n),
                    "GPTQ on a " + dims(rows, n) + " layer (Hessian, its inverse factor, weights)");
  detail::check_finite(w, "GPTQ: weight ", "NaN and Inf cannot be quantized");

  GptqReport report;
  std::vector<uint8_t> row_finite(static_cast<size_t>(n));
  parallel_for(n, 64, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      bool finite = true;
      for (int64_t j = i; j < n; ++j) finite &= std::isfinite(hu[i * n + j]);
      row_finite[i] = finite;
    }
  });
  for (int64_t i = 0; i < n; ++i) {
    const float* row = &hu[i * n];
    if (!row_finite[i])
      for (int64_t j = i; j < n; ++j)
        if (!std::isfinite(row[j]))
          throw Error("GPTQ: Hessian entry [" + std::to_string(i) + ", " + std::to_string(j) + "] is not finite");
  }
  // Dead columns (zero diagonal) get H[i,i] = 1 and zero weights, as in the reference.
  std::vector<uint8_t> dead(static_cast<size_t>(n), 0);
  std::vector<float> diag(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    diag[i] = hu[i * n + i];
    if (diag[i] == 0.0f) {
      dead[i] = 1;
      diag[i] = 1.0f;
      ++report.dead_columns;
    } else if (diag[i] < 0.0f) {
      throw Error("GPTQ: Hessian diagonal [" + std::to_string(i) + "] is negative: not a Hessian of real activations");
    }
  }

  report.perm.resize(static_cast<size_t>(n));
  std::iota(report.perm.begin(), report.perm.end(), 0);
  if (cfg.act_order)
    std::stable_sort(report.perm.begin(), report.perm.end(), [&](int32_t a, int32_t b) { return diag[a] > diag[b]; });
  bool identity = true;
  for (int64_t i = 0; i < n; ++i) identity = identity && report.perm[i] == static_cast<int32_t>(i);
  double mean_diag = 0;
  for (int64_t i = 0; i < n; ++i) mean_diag += diag[i];
  mean_diag /= static_cast<double>(n);

  // The factorisation reads only the lower triangle of a = J P H P J (P the
  // processing order, J the reversal): a[i][j] = H[perm[n-1-i]][perm[n-1-j]], j <= i.
  // In processing order that is row n-1-i of H's upper triangle read backwards; with
  // act-order the rows are gathered from a full symmetric copy (a row stays in cache
  // while its columns are gathered, where the upper triangle alone would need a
  // column walk).
  std::unique_ptr<float[]> sym;
  if (!identity) {
    sym = uninitialised(n);
    constexpr int64_t kT = 64;
    parallel_for((n + kT - 1) / kT, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t ib = b0 * kT; ib < std::min(n, b1 * kT); ib += kT)
        for (int64_t jb = 0; jb < n; jb += kT)
          for (int64_t i = ib; i < std::min(n, ib + kT); ++i)
            for (int64_t j = jb; j < std::min(n, jb + kT); ++j) sym[i * n + j] = i <= j ? hu[i * n + j] : hu[j * n + i];
    });
  }
  const std::unique_ptr<float[]> a = uninitialised(n), hinv = uninitialised(n);
  auto build_reversed = [&](float add) {
    parallel_for(n, 64, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        float* dst = &a[i * n];
        const int64_t pi = report.perm[n - 1 - i];
        if (identity) {
          const float* src = &hu[(n - 1 - i) * n + (n - 1)];
          for (int64_t j = 0; j <= i; ++j) dst[j] = src[-j];
        } else {
          const float* src = &sym[pi * n];
          for (int64_t j = 0; j <= i; ++j) dst[j] = src[report.perm[n - 1 - j]];
        }
        dst[i] = diag[pi] + add;
      }
    });
  };

  target.begin(rows, n, report.perm, cfg.static_groups);
  Problem pb{cfg, w, report.perm, std::move(dead), hinv.get(), n, 0, target.group_columns()};
  pb.block = effective_block(cfg.block_size, pb.group, n);

  // Damp, factor, and on failure damp harder: the most common GPTQ complaint is a
  // "not positive definite" error that the user cannot act on.
  double damp = cfg.damp_percent;
  for (int attempt = 0;; ++attempt) {
    build_reversed(static_cast<float>(damp * mean_diag));
    bool ok;
    {
      blas::ThreadScope one(1);  // parallel over tiles instead: same factor at any thread count
      ok = inverse_factor_of_reversed(a.get(), n, hinv.get());
    }
    if (ok) break;
    if (attempt >= cfg.max_damp_retries)
      throw Error("GPTQ: the Hessian of this " + dims(rows, n) + " layer is not positive definite even with damp_percent " +
                  std::to_string(damp) + " after " + std::to_string(attempt) + " increases; calibrate with more tokens "
                  "(H has rank at most the token count) or start from a larger damp_percent");
    detail::logger().warn("GPTQ: Cholesky failed with damp_percent {:.4f}; retrying with {:.4f}", damp, damp + cfg.damp_step);
    damp += cfg.damp_step;
    ++report.damp_retries;
  }
  report.damp_percent_used = damp;

  blas::ThreadScope one(1);  // parallelism comes from the row chunks below
  const int64_t chunks = (rows + kRowChunk - 1) / kRowChunk;
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) solve_rows(pb, target, c * kRowChunk, std::min(rows, (c + 1) * kRowChunk));
  });
  return report;
}

}  // namespace lowbit
