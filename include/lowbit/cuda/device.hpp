#pragma once
// lowbit::cuda — which GPU, if any, the CUDA kernels would run on.
#include <string>

namespace lowbit::cuda {

// Number of usable CUDA devices; 0 when there is no GPU or no driver.
int device_count();
// Name and compute capability of device 0, e.g. "NVIDIA H100 (sm_90)"; empty when none.
std::string device_description();

}  // namespace lowbit::cuda
