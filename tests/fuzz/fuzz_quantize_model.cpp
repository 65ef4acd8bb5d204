// libFuzzer target for the whole-model pipeline (lowbit/model/quantize_model.hpp): the
// input is a GGUF file; when GgufFile accepts it, it is planned and quantized as
// `lowbit quantize` would, into an in-memory writer. The input's last byte picks the
// configurations (so mutations explore all of them while each input costs two runs):
//   * always Q4_K_M with rtn; with bit 0 set, with an importance matrix whose values
//     come from the input's bytes, made finite and non-negative (so zeros, subnormals
//     and huge values all occur);
//   * bit 1 set: Q8_0 with GSQ; clear: Q4_0 with GPTQ where a tensor's row is at most
//     64 long (a small Hessian from synthetic activations), rtn elsewhere.
// Every step may refuse with lowbit::Error; anything else (another exception, a
// sanitizer report, a hang) is a finding. An accepted model's output must read back
// as GGUF with the planned tensor types and sizes.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "lowbit/core/log.hpp"
#include "lowbit/core/synthetic.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/model/quant_rules.hpp"
#include "lowbit/model/quantize_model.hpp"

namespace {

using lowbit_fuzz::require;

// Importance values from the input's tail: finite and non-negative, any magnitude.
std::vector<float> importance_from(const uint8_t* data, size_t size, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n), 1.0f);
  const size_t avail = size / 4;
  for (int64_t i = 0; i < n && avail > 0; ++i) {
    float f;
    std::memcpy(&f, data + 4 * (static_cast<size_t>(i) % avail), 4);
    f = std::fabs(f);
    v[static_cast<size_t>(i)] = std::isfinite(f) ? f : 1.0f;
  }
  return v;
}

lowbit::QuantizeModelOptions options(const char* scheme, lowbit::QuantMethod method) {
  lowbit::QuantizeModelOptions o{*lowbit::quant_scheme_from_name(scheme)};
  o.method = method;
  o.threads = 1;  // libFuzzer runs one input at a time; no pool to start
  return o;
}

void run(const lowbit::GgufFile& model, const lowbit::QuantizeModelOptions& o) {
  lowbit::QuantizePlan plan;
  std::vector<std::byte> bytes;
  try {
    plan = lowbit::plan_model_quantization(model, o);
    bytes = lowbit::quantize_model(model, plan, o).serialize();
  } catch (const lowbit::Error&) {
    return;  // a clear refusal
  } catch (const std::exception& e) {
    require(false, std::string("quantize_model threw something other than lowbit::Error: ") + e.what());
  }
  static lowbit_fuzz::MemFile out("lowbit-fuzz-quantized");
  try {
    const lowbit::GgufFile q = lowbit::GgufFile::open(out.write(bytes.data(), bytes.size()));
    require(q.tensors().size() == plan.tensors.size(), "output tensor count differs from the plan");
    for (size_t i = 0; i < plan.tensors.size(); ++i) {
      const lowbit::PlannedTensor& t = plan.tensors[i];
      const lowbit::GgufTensorInfo& info = q.tensors()[i];
      require(info.name == t.name && info.shape == t.shape, "output tensor " + t.name + " renamed or reshaped");
      require(info.format == t.to(), "output tensor " + t.name + " has another type than planned");
      require(info.nbytes == t.bytes_out, "output tensor " + t.name + " has another size than planned");
    }
  } catch (const lowbit::Error& e) {
    require(false, std::string("the quantized model does not read back: ") + e.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  lowbit::set_log_level(lowbit::LogLevel::off);  // the pipeline logs every tensor
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static lowbit_fuzz::MemFile input("lowbit-fuzz-model");
  std::optional<lowbit::GgufFile> model;
  try {
    model.emplace(lowbit::GgufFile::open(input.write(data, size)));
  } catch (const lowbit::Error&) {
    return 0;
  } catch (const std::exception& e) {
    require(false, std::string("GgufFile::open threw something other than lowbit::Error: ") + e.what());
  }

  const uint8_t selector = size > 0 ? data[size - 1] : 0;
  lowbit::QuantizeModelOptions rtn = options("Q4_K_M", lowbit::QuantMethod::rtn);
  if (selector & 1) {
    lowbit::ImportanceMap imatrix;
    for (const lowbit::GgufTensorInfo& t : model->tensors()) {
      const int64_t ne0 = t.shape.empty() ? 1 : t.shape[0];
      if (ne0 > 0 && ne0 <= (int64_t{1} << 16)) imatrix.emplace(t.name, importance_from(data, size, ne0));
    }
    rtn.imatrix = std::move(imatrix);
  }
  run(*model, rtn);
  if (selector & 2) {
    run(*model, options("Q8_0", lowbit::QuantMethod::gsq));
    return 0;
  }
  std::map<std::string, lowbit::HessianAccumulator, std::less<>> hessians;
  for (const lowbit::GgufTensorInfo& t : model->tensors()) {
    const int64_t cols = t.shape.empty() ? 1 : t.shape[0];
    if (t.shape.size() != 2 || cols <= 0 || cols > 64 || hessians.count(t.name)) continue;
    lowbit::HessianAccumulator h(cols);
    const std::vector<float> x = lowbit::synthetic_activations(2 * cols, cols, static_cast<uint64_t>(cols));
    h.add({x.data(), 2 * cols, cols});
    hessians.emplace(t.name, std::move(h));
  }
  lowbit::QuantizeModelOptions gptq = options("Q4_0", lowbit::QuantMethod::gptq);
  gptq.hessians = lowbit::hessians_from_map(std::move(hessians));
  run(*model, gptq);
  return 0;
}
