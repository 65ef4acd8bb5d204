// Device queries shared by every CUDA entry point and test.
#include <cuda_runtime.h>

#include <string>

#include "lowbit/core/error.hpp"
#include "lowbit/cuda/device.hpp"

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
