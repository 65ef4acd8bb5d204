// GPTQ on the GPU. Same steps as src/gptq/solver.cpp (dead columns, damping with
// retries, H^-1's upper Cholesky factor, lazy blocks aligned to the groups, groups
// fitted on the block's starting weights) with the column sweep as kernels:
//   fit_groups_kernel   min/max fit of every group that starts in the block
//   sweep_kernel        16 rows per thread block, the block's columns one by one:
//                       quantize, error, push the error onto the rest of the block
//   cublasSgemm         the block's errors onto every later column
// Matrices are row-major; cuBLAS / cuSOLVER see them column-major, i.e. transposed:
// the lower triangle they read of a row-major matrix is its upper triangle.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/gsq_device.hpp"
#include "cuda/common.cuh"
#include "lowbit/core/error.hpp"
#include "lowbit/cuda/device.hpp"
#include "lowbit/cuda/gptq.hpp"
#include "lowbit/gsq/packing.hpp"

namespace lowbit::cuda {
namespace {

constexpr int kSweepRows = 16, kSweepThreads = 256, kMaxBlock = 512;

// cuBLAS / cuSOLVER handles, one per thread and device, created on first use.
struct Handles {
  cublasHandle_t blas = nullptr;
  cusolverDnHandle_t solver = nullptr;
  int device = -1;
};
Handles& handles() {
  thread_local std::vector<Handles> per_device;
  int dev = 0;
  cudaGetDevice(&dev);
  for (auto& h : per_device)
    if (h.device == dev) return h;
  Handles h;
  h.device = dev;
  if (cublasCreate(&h.blas) != CUBLAS_STATUS_SUCCESS) throw Error("cuda GPTQ: cublasCreate failed");
  if (cusolverDnCreate(&h.solver) != CUSOLVER_STATUS_SUCCESS) throw Error("cuda GPTQ: cusolverDnCreate failed");
  per_device.push_back(h);
  return per_device.back();
}

using kernels::gptq_effective_block;

// ---------------------------------------------------------------- kernels

// Full symmetric H from the upper triangle; dead columns (zero diagonal) get 1.
__global__ void symmetrize_kernel(const float* __restrict__ hu, int64_t n, float* __restrict__ h, int* flags) {
  const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= n * n) return;
  const int64_t i = k / n, j = k % n;
  float v = i <= j ? hu[i * n + j] : hu[j * n + i];
  if (!(v <= 3.402823466e38f && v >= -3.402823466e38f)) atomicOr(&flags[0], 1);  // not finite
  if (i == j && v < 0.0f) atomicOr(&flags[0], 2);
  if (i == j && v == 0.0f) v = 1.0f;
  h[k] = v;
}

// Dead columns and the mean diagonal, sequentially in double as the CPU sums it.
__global__ void diag_kernel(const float* __restrict__ hu, const float* __restrict__ h, int64_t n,
                            int* __restrict__ dead, double* mean, int* flags) {
  double s = 0;
  int count = 0;
  for (int64_t i = 0; i < n; ++i) {
    dead[i] = hu[i * n + i] == 0.0f;
    count += dead[i];
    s += h[i * n + i];
  }
  *mean = s / static_cast<double>(n);
  flags[1] = count;
}

__global__ void damp_kernel(const float* __restrict__ h, int64_t n, const double* mean, double damp, float* __restrict__ hw) {
  const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= n * n) return;
  const float add = static_cast<float>(damp * *mean);
  hw[k] = (k / n == k % n) ? h[k] + add : h[k];
}

__global__ void copy_weights_kernel(const float* __restrict__ w, int64_t rows, int64_t n, const int* __restrict__ dead,
                                    float* __restrict__ wk) {
  const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= rows * n) return;
  wk[k] = dead[k % n] ? 0.0f : w[k];
}

__global__ void check_diag_kernel(const float* __restrict__ u, int64_t n, int* flags) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float d = u[i * n + i];
  if (!(d > 0.0f) || !(d <= 3.402823466e38f)) atomicOr(&flags[2], 1);
}

struct FitParams {
  int64_t rows, n, group, groups;
  int bits, storage;
  bool symmetric;
};

// One thread per (row, group in [g0, g1)).
__global__ void fit_groups_kernel(const float* __restrict__ wk, FitParams f, int64_t g0, int64_t g1,
                                  float* __restrict__ scales, int32_t* __restrict__ zeros) {
  const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= f.rows * (g1 - g0)) return;
  const int64_t r = k / (g1 - g0), g = g0 + k % (g1 - g0);
  const int64_t c0 = g * f.group, len = min(f.group, f.n - c0);
  const kernels::GsqIntParams p = kernels::gsq_fit_rtn(wk + r * f.n + c0, len, 1, f.bits, f.symmetric, f.storage);
  scales[r * f.groups + g] = p.scale;
  zeros[r * f.groups + g] = p.zero;
}

// Columns [p0, p1) of rows [16 * blockIdx.x, +16): the in-block GPTQ recursion.
__global__ void __launch_bounds__(kSweepThreads)
    sweep_kernel(float* __restrict__ wk, const float* __restrict__ hinv, FitParams f, int64_t p0, int64_t p1,
                 const float* __restrict__ scales, const int32_t* __restrict__ zeros, uint8_t* __restrict__ codes,
                 float* __restrict__ qout, float* __restrict__ err) {
  extern __shared__ float ws[];  // kSweepRows x (p1 - p0)
  __shared__ float e[kSweepRows];
  const int64_t B = p1 - p0;
  const int tr = threadIdx.x / (kSweepThreads / kSweepRows), tl = threadIdx.x % (kSweepThreads / kSweepRows);
  constexpr int kLanes = kSweepThreads / kSweepRows;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kSweepRows + tr;
  const bool live = r < f.rows;
  if (live)
    for (int64_t j = tl; j < B; j += kLanes) ws[tr * B + j] = wk[r * f.n + p0 + j];
  __syncthreads();
  for (int64_t i = 0; i < B; ++i) {
    const int64_t p = p0 + i;
    if (live && tl == 0) {
      const int64_t g = r * f.groups + p / f.group;
      uint32_t code;
      float q;
      const float ei =
          kernels::gptq_column_step(ws[tr * B + i], {scales[g], zeros[g]}, f.bits, hinv[p * f.n + p], code, q);
      codes[r * f.n + p] = static_cast<uint8_t>(code);
      if (qout != nullptr) qout[r * f.n + p] = q;
      e[tr] = ei;
      err[r * B + i] = ei;
    }
    __syncthreads();
    if (live) {
      const float ei = e[tr];
      const float* hrow = hinv + p * f.n + p0;
      for (int64_t j = i + 1 + tl; j < B; j += kLanes) ws[tr * B + j] -= ei * hrow[j];
    }
    __syncthreads();
  }
}

// ---------------------------------------------------------------- workspace

struct Layout {
  size_t h, hw, wk, err, dead, mean, flags, info, work, total;
  int lwork;
};

size_t align_up(size_t v) { return (v + 255) / 256 * 256; }

Layout layout(const GptqArguments& a, int lwork) {
  const auto n = static_cast<size_t>(a.cols), rows = static_cast<size_t>(a.rows);
  const int64_t group = a.target.resolved_group(a.cols);
  const auto block = static_cast<size_t>(gptq_effective_block(a.solver.block_size, group, a.cols));
  Layout l{};
  size_t o = 0;
  auto take = [&](size_t bytes) { const size_t at = o; o += align_up(bytes); return at; };
  l.h = take(n * n * 4);
  l.hw = take(n * n * 4);
  l.wk = take(rows * n * 4);
  l.err = take(rows * block * 4);
  l.dead = take(n * 4);
  l.mean = take(8);
  l.flags = take(4 * 4);
  l.info = take(4);
  l.lwork = lwork;
  l.work = take(static_cast<size_t>(lwork) * 4);
  l.total = o;
  return l;
}

int solver_lwork(int64_t n) {
  Handles& h = handles();
  int a = 0, b = 0;
  const int ni = static_cast<int>(n);
  if (cusolverDnSpotrf_bufferSize(h.solver, CUBLAS_FILL_MODE_LOWER, ni, nullptr, ni, &a) != CUSOLVER_STATUS_SUCCESS ||
      cusolverDnSpotri_bufferSize(h.solver, CUBLAS_FILL_MODE_LOWER, ni, nullptr, ni, &b) != CUSOLVER_STATUS_SUCCESS)
    throw Error("cuda GPTQ: cuSOLVER workspace query failed for n = " + std::to_string(n));
  return std::max(a, b);
}

void check(cudaError_t s, const char* what) {
  if (s != cudaSuccess) throw Error(std::string("cuda GPTQ: ") + what + ": " + cudaGetErrorString(s));
}

}  // namespace

// ---------------------------------------------------------------- Hessian

Status can_implement(const HessianArguments& a) {
  if (a.tokens < 1 || a.cols < 1 || a.tokens_seen < 0 || a.x == nullptr || a.h_upper == nullptr)
    return Status::invalid_problem;
  if (a.cols > INT32_MAX || a.tokens > INT32_MAX) return Status::not_supported;
  if (!detail::aligned(a.x, 4) || !detail::aligned(a.h_upper, 4)) return Status::misaligned_operand;
  return Status::success;
}

Status run(const HessianArguments& a, void*, Stream stream) {
  const Status s = can_implement(a);
  if (s != Status::success) return s;
  Handles& h = handles();
  if (cublasSetStream(h.blas, stream) != CUBLAS_STATUS_SUCCESS) return Status::cuda_error;
  const double total = static_cast<double>(a.tokens_seen) + static_cast<double>(a.tokens);
  const auto beta = static_cast<float>(static_cast<double>(a.tokens_seen) / total);
  const auto alpha = static_cast<float>(2.0 / total);
  // Row-major X (tokens x cols) is column-major X^T: C = alpha X^T X + beta C in the
  // column-major lower triangle, the row-major upper one.
  const int n = static_cast<int>(a.cols), k = static_cast<int>(a.tokens);
  if (cublasSsyrk(h.blas, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, n, k, &alpha, a.x, n, &beta, a.h_upper, n) !=
      CUBLAS_STATUS_SUCCESS)
    return Status::cuda_error;
  return detail::launch_status();
}

// ---------------------------------------------------------------- GPTQ

Status can_implement(const GptqArguments& a) {
  const GsqConfig& t = a.target;
  if (t.search != ScaleSearch::rtn || t.scheme == GsqScheme::asymmetric_float || t.double_quant) return Status::not_supported;
  if (a.solver.act_order || a.solver.static_groups || a.solver.fit_groups_on_updated_weights) return Status::not_supported;
  if (t.bits < 2 || t.bits > 8 || a.solver.block_size < 1) return Status::invalid_problem;
  if (a.rows < 1 || a.cols < 1 || a.cols > INT32_MAX || a.rows > INT32_MAX) return Status::invalid_problem;
  const int64_t group = t.resolved_group(a.cols);
  if (group < 1 || a.cols % group != 0) return Status::invalid_problem;
  if (gptq_effective_block(a.solver.block_size, group, a.cols) > kMaxBlock) return Status::not_supported;
  if (a.w == nullptr || a.h_upper == nullptr || a.codes == nullptr || a.scales == nullptr || a.zeros == nullptr)
    return Status::invalid_problem;
  if (!detail::aligned(a.w, 4) || !detail::aligned(a.h_upper, 4) || !detail::aligned(a.scales, 4) ||
      !detail::aligned(a.zeros, 4) || !detail::aligned(a.q, 4))
    return Status::misaligned_operand;
  return Status::success;
}

size_t get_workspace_size(const GptqArguments& a) {
  if (can_implement(a) != Status::success) return 0;
  return layout(a, solver_lwork(a.cols)).total;
}

GptqGpuReport run(const GptqArguments& a, void* workspace, Stream stream) {
  throw_if_error(can_implement(a), "cuda GPTQ");
  if (workspace == nullptr) throw_if_error(Status::workspace_null, "cuda GPTQ");
  if (!detail::aligned(workspace, 256)) throw_if_error(Status::misaligned_operand, "cuda GPTQ workspace");
  const int64_t n = a.cols, rows = a.rows;
  const int64_t group = a.target.resolved_group(n), groups = n / group;
  const int64_t block = gptq_effective_block(a.solver.block_size, group, n);
  Handles& hd = handles();
  if (cublasSetStream(hd.blas, stream) != CUBLAS_STATUS_SUCCESS || cusolverDnSetStream(hd.solver, stream) != CUSOLVER_STATUS_SUCCESS)
    throw Error("cuda GPTQ: cannot bind the stream to the cuBLAS / cuSOLVER handles");
  const Layout l = layout(a, solver_lwork(n));
  auto* base = static_cast<char*>(workspace);
  auto* h = reinterpret_cast<float*>(base + l.h);
  auto* hw = reinterpret_cast<float*>(base + l.hw);
  auto* wk = reinterpret_cast<float*>(base + l.wk);
  auto* err = reinterpret_cast<float*>(base + l.err);
  auto* dead = reinterpret_cast<int*>(base + l.dead);
  auto* mean = reinterpret_cast<double*>(base + l.mean);
  auto* flags = reinterpret_cast<int*>(base + l.flags);
  auto* info = reinterpret_cast<int*>(base + l.info);
  auto* work = reinterpret_cast<float*>(base + l.work);
  const int ni = static_cast<int>(n);

  check(cudaMemsetAsync(flags, 0, 16, stream), "cudaMemsetAsync");
  symmetrize_kernel<<<detail::blocks_for(n * n, 256), 256, 0, stream>>>(a.h_upper, n, h, flags);
  diag_kernel<<<1, 1, 0, stream>>>(a.h_upper, h, n, dead, mean, flags);
  copy_weights_kernel<<<detail::blocks_for(rows * n, 256), 256, 0, stream>>>(a.w, rows, n, dead, wk);
  check(cudaGetLastError(), "prepare kernels");
  int host_flags[4] = {};
  check(cudaMemcpyAsync(host_flags, flags, sizeof host_flags, cudaMemcpyDeviceToHost, stream), "flags to host");
  check(cudaStreamSynchronize(stream), "prepare");
  if (host_flags[0] & 1) throw Error("cuda GPTQ: the Hessian has a non-finite entry");
  if (host_flags[0] & 2) throw Error("cuda GPTQ: a Hessian diagonal entry is negative: not a Hessian of real activations");

  GptqGpuReport report;
  report.dead_columns = host_flags[1];
  double damp = a.solver.damp_percent;
  for (int attempt = 0;; ++attempt) {
    damp_kernel<<<detail::blocks_for(n * n, 256), 256, 0, stream>>>(h, n, mean, damp, hw);
    check(cudaMemsetAsync(flags + 2, 0, 4, stream), "cudaMemsetAsync");
    // H = L L^T, H^-1 from L, H^-1 = L' L'^T; L' column-major lower = the row-major upper factor U.
    bool ok = true;
    for (int step = 0; step < 3 && ok; ++step) {
      cusolverStatus_t st = step == 1
          ? cusolverDnSpotri(hd.solver, CUBLAS_FILL_MODE_LOWER, ni, hw, ni, work, l.lwork, info)
          : cusolverDnSpotrf(hd.solver, CUBLAS_FILL_MODE_LOWER, ni, hw, ni, work, l.lwork, info);
      if (st != CUSOLVER_STATUS_SUCCESS) throw Error("cuda GPTQ: cuSOLVER call failed");
      int host_info = 0;
      check(cudaMemcpyAsync(&host_info, info, sizeof host_info, cudaMemcpyDeviceToHost, stream), "info to host");
      check(cudaStreamSynchronize(stream), "factorisation");
      ok = host_info == 0;
    }
    if (ok) {
      check_diag_kernel<<<detail::blocks_for(n, 256), 256, 0, stream>>>(hw, n, flags);
      int bad = 0;
      check(cudaMemcpyAsync(&bad, flags + 2, 4, cudaMemcpyDeviceToHost, stream), "diag check to host");
      check(cudaStreamSynchronize(stream), "diag check");
      ok = bad == 0;
    }
    if (ok) break;
    if (attempt >= a.solver.max_damp_retries)
      throw Error("cuda GPTQ: the Hessian of this " + std::to_string(rows) + " x " + std::to_string(n) +
                  " layer is not positive definite even with damp_percent " + std::to_string(damp) + " after " +
                  std::to_string(attempt) + " increases: " + to_string(Status::not_positive_definite));
    damp += a.solver.damp_step;
    ++report.damp_retries;
  }
  report.damp_percent_used = damp;

  const FitParams f{rows, n, group, groups, a.target.bits, static_cast<int>(a.target.scale_storage),
                    a.target.scheme == GsqScheme::symmetric};
  const size_t smem = static_cast<size_t>(kSweepRows * block) * sizeof(float);
  if (smem > 48 * 1024)
    check(cudaFuncSetAttribute(sweep_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)),
          "shared memory attribute");
  const float minus_one = -1.0f, one = 1.0f;
  for (int64_t i1 = 0; i1 < n; i1 += block) {
    const kernels::GptqBlockPlan pl = kernels::gptq_block_plan(rows, n, group, block, i1);
    if (pl.g1 > pl.g0)
      fit_groups_kernel<<<detail::blocks_for(rows * (pl.g1 - pl.g0), 128), 128, 0, stream>>>(wk, f, pl.g0, pl.g1,
                                                                                            a.scales, a.zeros);
    sweep_kernel<<<static_cast<unsigned>((rows + kSweepRows - 1) / kSweepRows), kSweepThreads, smem, stream>>>(
        wk, hw, f, pl.i1, pl.i2, a.scales, a.zeros, a.codes, a.q, err);
    check(cudaGetLastError(), "sweep kernels");
    if (pl.m > 0 &&
        cublasSgemm(hd.blas, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(pl.m), static_cast<int>(pl.n), static_cast<int>(pl.k),
                    &minus_one, hw + pl.a_offset, static_cast<int>(pl.lda), err, static_cast<int>(pl.ldb), &one,
                    wk + pl.c_offset, static_cast<int>(pl.ldc)) != CUBLAS_STATUS_SUCCESS)
      throw Error("cuda GPTQ: cublasSgemm failed");
  }
  check(cudaStreamSynchronize(stream), "sweep");
  return report;
}

GsqResult gptq_solve_host(const GptqConfig& solver, const GsqConfig& target, ConstMatrixView<float> w,
                          std::span<const float> hessian_upper, GptqGpuReport* report) {
  solver.validate();
  target.validate();
  const int64_t rows = w.rows, n = w.cols;
  if (static_cast<int64_t>(hessian_upper.size()) != n * n)
    throw Error("cuda GPTQ: the Hessian has " + std::to_string(hessian_upper.size()) + " entries, a layer with " +
                std::to_string(n) + " inputs needs " + std::to_string(n * n));
  if (device_count() == 0) throw Error("cuda GPTQ: no CUDA device available");
  GptqArguments a;
  a.solver = solver;
  a.target = target;
  a.rows = rows;
  a.cols = n;
  const int64_t group = target.resolved_group(n), groups = group > 0 ? n / group : 0;
  std::vector<void*> owned;
  struct Free {
    std::vector<void*>& p;
    ~Free() { for (void* q : p) cudaFree(q); }
  } release{owned};
  auto alloc = [&](size_t bytes) {
    void* p = nullptr;
    check(cudaMalloc(&p, bytes + 1), "cudaMalloc");
    owned.push_back(p);
    return p;
  };
  a.w = static_cast<float*>(alloc(static_cast<size_t>(rows * n) * 4));
  a.h_upper = static_cast<float*>(alloc(static_cast<size_t>(n * n) * 4));
  a.codes = static_cast<uint8_t*>(alloc(static_cast<size_t>(rows * n)));
  a.scales = static_cast<float*>(alloc(static_cast<size_t>(rows * groups) * 4));
  a.zeros = static_cast<int32_t*>(alloc(static_cast<size_t>(rows * groups) * 4));
  throw_if_error(can_implement(a), "cuda GPTQ " + target.describe());
  for (int64_t r = 0; r < rows; ++r)
    check(cudaMemcpy(const_cast<float*>(a.w) + r * n, w.row(r), static_cast<size_t>(n) * 4, cudaMemcpyHostToDevice),
          "weights to device");
  check(cudaMemcpy(const_cast<float*>(a.h_upper), hessian_upper.data(), static_cast<size_t>(n * n) * 4,
                   cudaMemcpyHostToDevice), "Hessian to device");
  void* ws = alloc(get_workspace_size(a));
  const GptqGpuReport rep = run(a, ws, nullptr);
  if (report != nullptr) *report = rep;

  GsqResult out;
  out.config = target;
  out.rows = rows;
  out.cols = n;
  out.scales.resize(static_cast<size_t>(rows * groups));
  out.zeros.resize(static_cast<size_t>(rows * groups));
  std::vector<uint8_t> codes(static_cast<size_t>(rows * n));
  check(cudaMemcpy(out.scales.data(), a.scales, out.scales.size() * 4, cudaMemcpyDeviceToHost), "scales to host");
  check(cudaMemcpy(out.zeros.data(), a.zeros, out.zeros.size() * 4, cudaMemcpyDeviceToHost), "zeros to host");
  check(cudaMemcpy(codes.data(), a.codes, codes.size(), cudaMemcpyDeviceToHost), "codes to host");
  const int64_t words = out.words_per_row();
  out.qweight.assign(static_cast<size_t>(rows * words), 0u);
  std::vector<uint32_t> row(static_cast<size_t>(n));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < n; ++c) row[c] = codes[static_cast<size_t>(r * n + c)];
    pack_codes(row, target.bits, std::span<uint32_t>(out.qweight.data() + r * words, static_cast<size_t>(words)));
  }
  return out;
}

}  // namespace lowbit::cuda
