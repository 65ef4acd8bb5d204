// Device queries shared by every CUDA entry point and test.
#include <cuda_runtime.h>

#include <string>

#include "lowbit/core/error.hpp"
#include "lowbit/cuda/device.hpp"
#include "lowbit/cuda/status.hpp"

namespace lowbit::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return n;
}

std::string device_description() {
  if (device_count() == 0) return {};
  cudaDeviceProp prop{};
  const cudaError_t status = cudaGetDeviceProperties(&prop, 0);
  if (status != cudaSuccess) throw Error(std::string("CUDA cudaGetDeviceProperties: ") + cudaGetErrorString(status));
  return std::string(prop.name) + " (sm_" + std::to_string(prop.major * 10 + prop.minor) + ")";
}

}  // namespace lowbit::cuda

namespace lowbit::cuda {

const char* to_string(Status s) {
  switch (s) {
    case Status::success: return "success";
    case Status::not_supported: return "not supported by this build's kernels";
    case Status::invalid_problem: return "invalid problem (shape or pointers)";
    case Status::misaligned_operand: return "misaligned operand";
    case Status::workspace_null: return "workspace required but null";
    case Status::no_device: return "no CUDA device";
    case Status::cuda_error: return "CUDA call failed";
    case Status::not_positive_definite: return "Hessian not positive definite";
  }
  return "unknown status";
}

void throw_if_error(Status s, const std::string& what) {
  if (s != Status::success) throw Error(what + ": " + to_string(s));
}

}  // namespace lowbit::cuda
