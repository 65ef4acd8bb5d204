// The C API: the whole-model pipeline with progress and cancellation
// (include/lowbit/lowbit.h).
#include <filesystem>
#include <string>

#include "c_api/c_api.hpp"
#include "lowbit/io/imatrix.hpp"
#include "lowbit/model/quant_rules.hpp"
#include "lowbit/model/quantize_model.hpp"

using namespace lowbit;
using namespace lowbit_capi;

extern "C" {

lowbit_status lowbit_quantize_model(const char* in_path, const char* out_path, const char* type,
                                    const char* imatrix_path, const char* method, const char* hessian_dir, int threads,
                                    lowbit_progress_fn progress, void* user, lowbit_model_summary* summary) {
  return guard(__func__, [&] {
    require(in_path, "in_path");
    require(out_path, "out_path");
    require(type, "type");
    const auto scheme = quant_scheme_from_name(type);
    if (!scheme) {
      std::string names;
      for (std::string_view n : quant_scheme_names()) {
        if (!names.empty()) names += ' ';
        names += n;
      }
      fail(LOWBIT_ERROR_NOT_FOUND, "unknown type '" + std::string(type) + "' (one of: " + names + ")");
    }
    QuantizeModelOptions opts;
    opts.scheme = *scheme;
    if (method) {
      const auto m = quant_method_from_name(method);
      if (!m) fail(LOWBIT_ERROR_NOT_FOUND, "unknown method '" + std::string(method) + "' (rtn, gsq or gptq)");
      opts.method = *m;
    }
    if (threads < 0) fail(LOWBIT_ERROR_INVALID_ARGUMENT, "thread count " + std::to_string(threads) + " is negative");
    opts.threads = threads;
    if (opts.method == QuantMethod::gptq && !hessian_dir)
      fail(LOWBIT_ERROR_INVALID_ARGUMENT, "method gptq needs hessian_dir (<tensor name>.hess files)");
    if (opts.method != QuantMethod::gptq && hessian_dir)
      fail(LOWBIT_ERROR_INVALID_ARGUMENT, "hessian_dir is only used by method gptq");
    if (hessian_dir) {
      if (!std::filesystem::is_directory(hessian_dir))
        throw Error("hessian_dir " + std::string(hessian_dir) + ": not a directory");
      opts.hessians = hessians_from_directory(hessian_dir);
    }
    // Fail before the work, not after it, when the output cannot be created.
    const std::filesystem::path out_dir = std::filesystem::absolute(out_path).parent_path();
    if (!std::filesystem::is_directory(out_dir))
      throw Error("output " + std::string(out_path) + ": folder " + out_dir.string() + " does not exist");
    if (imatrix_path) opts.imatrix = importance_map(load_imatrix(imatrix_path));

    bool cancel = false;
    if (progress) {
      opts.progress = [&](int64_t done, int64_t total) {
        if (progress(done, total, user) != 0) cancel = true;
      };
      opts.cancelled = [&] { return cancel; };
    }
    const QuantizePlan plan = quantize_model(std::filesystem::path(in_path), std::filesystem::path(out_path), opts);
    if (summary) {
      *summary = lowbit_model_summary{};
      summary->tensors = static_cast<int64_t>(plan.tensors.size());
      for (const PlannedTensor& t : plan.tensors) summary->converted += t.converts() ? 1 : 0;
      summary->fallbacks = plan.fallbacks;
      summary->bytes_in = plan.bytes_in;
      summary->bytes_out = plan.bytes_out;
      summary->elements = plan.elements;
    }
  });
}

}  // extern "C"
