#pragma once
// lowbit::cuda — the status every CUDA entry point returns, in the CUTLASS shape:
// can_implement(args) says whether a variant serves a problem, get_workspace_size(args)
// how much device scratch it needs, run(args, workspace, stream) enqueues it. Entry
// points never allocate, never copy to or from the host and never synchronise (the
// GPTQ solver is the one exception and says so); host convenience wrappers that do
// are named *_host. Built only when CUDA is enabled (LOWBIT_CUDA).
#include <string>

struct CUstream_st;

namespace lowbit::cuda {

// cudaStream_t, without pulling the CUDA headers into every consumer.
using Stream = CUstream_st*;

enum class Status {
  success,
  not_supported,         // this build has no kernel for the format / layout / option
  invalid_problem,       // shape or pointer arguments that no kernel could serve
  misaligned_operand,    // a pointer off the alignment the kernel needs
  workspace_null,        // get_workspace_size() > 0 but no workspace given
  no_device,             // no CUDA device or driver
  cuda_error,            // a CUDA / cuBLAS / cuSOLVER call failed
  not_positive_definite  // GPTQ: the Hessian stayed indefinite after every damping retry
};

const char* to_string(Status s);
// Throws lowbit::Error("<what>: <status>") unless s is success.
void throw_if_error(Status s, const std::string& what);

}  // namespace lowbit::cuda
