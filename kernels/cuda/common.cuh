#pragma once
// What every CUDA translation unit of lowbit::cuda shares: status plumbing and the
// table shape of a kernel family (one table per family, keyed by format, like the
// CPU's kernels/lists/).
#include <cuda_runtime.h>

#include <cstdint>

#include "lowbit/cuda/status.hpp"

namespace lowbit::cuda::detail {

inline Status launch_status() { return cudaGetLastError() == cudaSuccess ? Status::success : Status::cuda_error; }

inline unsigned blocks_for(int64_t n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

// A family's table: one entry per key, the launcher behind it.
template <class Key, class Launch>
struct Entry {
  Key key;
  Launch launch;
};

template <class Key, class Launch, size_t N>
const Launch* find(const Entry<Key, Launch> (&table)[N], Key k) {
  for (const auto& e : table)
    if (e.key == k) return &e.launch;
  return nullptr;
}

inline bool aligned(const void* p, size_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; }

}  // namespace lowbit::cuda::detail
