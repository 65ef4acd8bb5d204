#include "lowbit/model/quantize_model.hpp"

#include <tbb/task_arena.h>

#include <algorithm>
#include <span>
#include <utility>

#include "common/log.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/gptq/ggml_target.hpp"
#include "lowbit/gsq/ggml_mapping.hpp"
#include "lowbit/gsq/quantizer.hpp"
#include "lowbit/formats/quantize.hpp"
#include "lowbit/io/files.hpp"

namespace lowbit {
namespace {

std::string_view format_name(Format f) { return traits(f).name; }

std::string ftype_line(const QuantScheme& s) {
  return s.name + " (general.file_type " + std::to_string(s.file_type) + ")";
}

// The importance for one tensor: one vector per row length shared by all slices, or
// one per slice (MoE experts), as llama-quantize maps it.
void attach_importance(const ImportanceMap& imatrix, PlannedTensor& t) {
  const auto it = imatrix.find(t.name);
  if (it == imatrix.end()) {
    detail::logger().info("{}: no importance data in the imatrix, quantized without", t.name);
    return;
  }
  const std::vector<float>& v = it->second;
  const int64_t ne0 = t.shape.empty() ? 1 : t.shape[0];
  const size_t n = v.size();
  if (n == static_cast<size_t>(ne0 * t.slices)) {
    t.importance = v;
  } else if (n == static_cast<size_t>(ne0)) {
    t.importance.reserve(static_cast<size_t>(ne0 * t.slices));
    for (int64_t s = 0; s < t.slices; ++s) t.importance.insert(t.importance.end(), v.begin(), v.end());
  } else if (t.name == "token_embd.weight" || t.name == "per_layer_token_embd.weight") {
    // Embedding lookups are not matrix products; llama.cpp ignores a mismatch here too.
    detail::logger().warn("{}: imatrix has {} values for a row length of {}: ignored", t.name, n, ne0);
  } else {
    throw Error("imatrix entry '" + t.name + "' has " + std::to_string(n) + " values but the tensor needs " +
                std::to_string(ne0) + " (row length) or " + std::to_string(ne0 * t.slices) + " (per matrix)");
  }
}

// Reports converted elements to options.progress, then asks options.cancelled.
class ProgressSink {
 public:
  ProgressSink(const QuantizeModelOptions& o, int64_t total) : fn_(o.progress), cancelled_(o.cancelled), total_(total) {}
  void advance(int64_t elements) {
    done_ += elements;
    if (fn_) fn_(done_, total_);
    check_cancelled();
  }
  void check_cancelled() const {
    if (cancelled_ && cancelled_()) throw QuantizeCancelled();
  }

 private:
  const std::function<void(int64_t, int64_t)>& fn_;
  const std::function<bool()>& cancelled_;
  int64_t total_, done_ = 0;
};

// Rows are quantized in chunks of about this many elements so progress moves.
constexpr int64_t kChunkElements = int64_t{1} << 22;

std::vector<std::byte> quantize_rtn(Format f, const std::vector<float>& w, int64_t rows, int64_t cols,
                                    const std::vector<float>& imp, int64_t rows_per_slice, ProgressSink& progress) {
  std::vector<std::byte> out(quantized_size(f, rows, cols));
  const size_t rb = row_bytes(f, cols);
  const int64_t chunk = std::max<int64_t>(1, kChunkElements / cols);
  for (int64_t r0 = 0; r0 < rows;) {
    const int64_t slice = r0 / rows_per_slice;
    const int64_t r1 = std::min({rows, r0 + chunk, (slice + 1) * rows_per_slice});  // never cross a slice
    std::span<const float> slice_imp;
    if (!imp.empty())
      slice_imp = std::span<const float>(imp).subspan(static_cast<size_t>(slice * cols), static_cast<size_t>(cols));
    quantize(f, {w.data() + r0 * cols, r1 - r0, cols},
             std::span<std::byte>(out).subspan(static_cast<size_t>(r0) * rb, static_cast<size_t>(r1 - r0) * rb),
             slice_imp);
    progress.advance((r1 - r0) * cols);
    r0 = r1;
  }
  return out;
}

std::vector<std::byte> quantize_gsq(Format f, const std::vector<float>& w, int64_t rows, int64_t cols,
                                    const PlannedTensor& t, ProgressSink& progress) {
  const int64_t rows_per_slice = rows / t.slices;
  std::vector<std::byte> out;
  for (int64_t s = 0; s < t.slices; ++s) {
    std::span<const float> imp;
    if (!t.importance.empty())
      imp = std::span<const float>(t.importance).subspan(static_cast<size_t>(s * cols), static_cast<size_t>(cols));
    const GsqConfig cfg = *gsq_config_for(f, imp.empty() ? ScaleSearch::mse : ScaleSearch::importance);
    const GsqResult q = gsq_quantize(cfg, {w.data() + s * rows_per_slice * cols, rows_per_slice, cols}, imp);
    const std::vector<std::byte> bytes = to_ggml_blocks(q);
    out.insert(out.end(), bytes.begin(), bytes.end());
    progress.advance(rows_per_slice * cols);
  }
  return out;
}

// GPTQ when the tensor has a Hessian; nullopt to fall back to rtn.
std::optional<std::vector<std::byte>> quantize_gptq(Format f, const std::vector<float>& w, int64_t rows, int64_t cols,
                                                    const PlannedTensor& t, const QuantizeModelOptions& o) {
  const std::string where = o.hessians.describe ? o.hessians.describe(t.name) : std::string();
  const std::shared_ptr<const HessianAccumulator> h = o.hessians.get ? o.hessians.get(t.name) : nullptr;
  if (!h) {
    if (where.empty())
      detail::logger().info("{}: no Hessian, quantized with rtn", t.name);
    else
      detail::logger().info("{}: no Hessian ({}), quantized with rtn", t.name, where);
    return std::nullopt;
  }
  if (t.slices != 1) {
    detail::logger().info("{}: GPTQ takes 2-D weights, this one has {} matrices: quantized with rtn", t.name,
                          t.slices);
    return std::nullopt;
  }
  if (h->cols() != cols)
    throw Error((where.empty() ? std::string() : where + ": ") + "Hessian for " + std::to_string(h->cols()) +
                " columns, tensor '" + t.name + "' has " + std::to_string(cols));
  const std::vector<float> imp = t.importance.empty() ? h->importance() : t.importance;
  GgmlTarget target(f, imp);
  const GptqReport rep = gptq_solve(o.gptq, {w.data(), rows, cols}, *h, target);
  if (rep.damp_retries > 0) detail::logger().info("{}: GPTQ damping raised to {:.3f}", t.name, rep.damp_percent_used);
  return target.result();
}

// One tensor to its planned type (t.converts()).
std::vector<std::byte> convert(const GgufFile& model, const GgufTensorInfo& info, const PlannedTensor& t,
                               const QuantizeModelOptions& o, ProgressSink& progress) {
  const Format to = t.to();
  const int64_t cols = info.row_length(), rows = info.rows();
  if (info.elements() == 0) return {};  // an empty tensor stays empty in any type (no rows to quantize)
  std::vector<float> w(static_cast<size_t>(info.elements()));
  dequantize(info.format, model.data(info), {w.data(), rows, cols});
  const bool quantized = traits(to).quantized;
  if (quantized && o.method == QuantMethod::gsq) return quantize_gsq(to, w, rows, cols, t, progress);
  if (quantized && o.method == QuantMethod::gptq) {
    if (auto g = quantize_gptq(to, w, rows, cols, t, o)) {
      progress.advance(info.elements());
      return std::move(*g);
    }
  }
  return quantize_rtn(to, w, rows, cols, t.importance, rows / t.slices, progress);
}

GgufWriter quantize_planned(const GgufFile& model, const QuantizePlan& plan, const QuantizeModelOptions& o) {
  if (plan.tensors.size() != model.tensors().size())
    throw Error("quantize_model: the plan has " + std::to_string(plan.tensors.size()) + " tensors, the model " +
                std::to_string(model.tensors().size()) + " (a plan of another file?)");
  GgufWriter writer;
  writer.copy_metadata(model);
  writer.set("general.quantization_version", GgufValue(uint32_t{2}));
  writer.set("general.file_type", GgufValue(o.scheme.file_type));
  // A single output file: drop the input's shard bookkeeping, as llama-quantize does.
  for (const char* key : {"split.no", "split.count", "split.tensors.count"}) writer.remove(key);

  ProgressSink progress(o, plan.work);
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const PlannedTensor& t = plan.tensors[i];
    const GgufTensorInfo& info = model.tensors()[i];
    if (info.name != t.name || info.format != t.from)
      throw Error("quantize_model: plan tensor " + std::to_string(i) + " is '" + t.name + "', the model's is '" +
                  info.name + "' (a plan of another file?)");
    progress.check_cancelled();
    if (!t.converts()) {
      writer.add_tensor(info.name, info.shape, info.format, model.data(info));  // kept as stored (borrowed bytes)
    } else {
      try {
        writer.add_tensor(info.name, info.shape, t.to(), convert(model, info, t, o, progress));
      } catch (const QuantizeCancelled&) {
        throw;
      } catch (const Error& e) {
        throw Error("tensor '" + t.name + "' (" + std::string(format_name(t.from)) + " -> " +
                    std::string(format_name(t.to())) + "): " + e.what());
      }
    }
    if (o.on_tensor) o.on_tensor(t);
  }
  return writer;
}

}  // namespace

std::optional<QuantMethod> quant_method_from_name(std::string_view name) {
  if (name == "rtn") return QuantMethod::rtn;
  if (name == "gsq") return QuantMethod::gsq;
  if (name == "gptq") return QuantMethod::gptq;
  return std::nullopt;
}

std::string_view to_string(QuantMethod method) {
  switch (method) {
    case QuantMethod::rtn: return "rtn";
    case QuantMethod::gsq: return "gsq";
    case QuantMethod::gptq: return "gptq";
  }
  return "?";
}

ImportanceMap importance_map(const Imatrix& imatrix) {
  ImportanceMap m;
  for (const auto& [name, entry] : imatrix.entries) m.emplace(name, entry.importance);
  return m;
}

namespace {

// "<dir>/<escaped name>.hess": tensor_file_name (lowbit/io/files.hpp) escapes '/', '%',
// control bytes and a leading '.', so no tensor name (e.g. "../x" or "/abs/x") can
// reach a file outside `dir`.
std::filesystem::path hessian_file(const std::filesystem::path& dir, const std::string& name) {
  return dir / tensor_file_name(name, ".hess");
}

}  // namespace

HessianSource hessians_from_directory(const std::filesystem::path& dir) {
  HessianSource s;
  s.get = [dir](const std::string& name) -> std::shared_ptr<const HessianAccumulator> {
    const std::filesystem::path p = hessian_file(dir, name);
    std::error_code ec;
    const std::filesystem::file_status st = std::filesystem::status(p, ec);
    if (st.type() == std::filesystem::file_type::not_found) return nullptr;
    if (ec) throw Error("Hessian file '" + p.string() + "' for tensor '" + name + "': " + ec.message());
    return std::make_shared<const HessianAccumulator>(HessianAccumulator::load(p.string()));
  };
  s.describe = [dir](const std::string& name) { return hessian_file(dir, name).string(); };
  return s;
}

HessianSource hessians_from_map(std::map<std::string, HessianAccumulator, std::less<>> hessians) {
  auto held = std::make_shared<const std::map<std::string, HessianAccumulator, std::less<>>>(std::move(hessians));
  HessianSource s;
  s.get = [held](const std::string& name) -> std::shared_ptr<const HessianAccumulator> {
    const auto it = held->find(name);
    if (it == held->end()) return nullptr;
    return std::shared_ptr<const HessianAccumulator>(held, &it->second);  // shares the map's lifetime
  };
  return s;
}

int64_t PlannedTensor::elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

QuantizePlan plan_model_quantization(const GgufFile& model, const QuantizeModelOptions& o) {
  if (o.method == QuantMethod::gptq && !o.hessians.get)
    throw Error("quantize_model: method gptq needs a Hessian source (QuantizeModelOptions::hessians)");
  QuantizePlan plan;
  plan.model = ModelInfo::from_gguf(model);
  plan.model.has_imatrix = o.imatrix.has_value();
  detail::logger().info("{}: {} tensors, architecture '{}', {} layers, GQA {}; target {}", model.path().string(),
                        model.tensors().size(), plan.model.architecture, plan.model.n_layer, plan.model.n_gqa(),
                        ftype_line(o.scheme));

  for (const GgufTensorInfo& info : model.tensors()) {
    PlannedTensor t;
    t.name = info.name;
    t.shape = info.shape;
    t.from = info.format;
    t.plan = plan_tensor(o.scheme, plan.model, info.name, info.shape, info.format);
    for (size_t d = 2; d < info.shape.size(); ++d) t.slices *= info.shape[d];
    if (t.slices == 0) t.slices = 1;  // an empty tensor: nothing to split
    if (t.plan.fallback_from) {
      ++plan.fallbacks;
      detail::logger().info("{}: row length {} does not fit {}: using {}", info.name, info.row_length(),
                            format_name(*t.plan.fallback_from), format_name(t.to()));
    }
    const bool quantized = traits(t.to()).quantized;
    if (t.converts() && o.method == QuantMethod::gsq && quantized && !gsq_config_for(t.to()))
      throw Error("--method gsq: tensor '" + info.name + "' needs type " + std::string(format_name(t.to())) +
                  " under " + o.scheme.name + ", and GSQ only writes Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0");
    t.bytes_in = info.nbytes;
    t.bytes_out = info.nbytes;
    if (t.converts()) {
      if (o.imatrix && quantized) attach_importance(*o.imatrix, t);
      plan.work += info.elements();
      t.bytes_out = info.elements() == 0 ? 0 : quantized_size(t.to(), info.rows(), info.row_length());
    }
    plan.elements += info.elements();
    plan.bytes_in += t.bytes_in;
    plan.bytes_out += t.bytes_out;
    plan.tensors.push_back(std::move(t));
  }
  // An imatrix that names none of the tensors it should weight is almost always the
  // imatrix of another model: refuse rather than quantize silently without it.
  // (An empty map is an explicit "no data, but apply the imatrix rules".)
  if (o.imatrix && !o.imatrix->empty()) {
    int64_t wanting = 0, matched = 0;
    const PlannedTensor* first = nullptr;
    for (const PlannedTensor& t : plan.tensors)
      if (t.converts() && traits(t.to()).quantized) {
        ++wanting;
        matched += o.imatrix->contains(t.name);
        if (!first) first = &t;
      }
    if (wanting > 0 && matched == 0)
      throw Error("the imatrix has no entry for any of the " + std::to_string(wanting) +
                  " tensors it would weight (first: '" + first->name + "'; imatrix entries: " +
                  std::to_string(o.imatrix->size()) + ", first '" + o.imatrix->begin()->first +
                  "'): is it the imatrix of another model?");
  }
  if (plan.fallbacks)
    detail::logger().warn("{} tensor(s) have a row length their type cannot hold and fall back to another type "
                          "(as llama-quantize does; the summary shows which)",
                          plan.fallbacks);
  return plan;
}

GgufWriter quantize_model(const GgufFile& model, const QuantizePlan& plan, const QuantizeModelOptions& o) {
  if (o.threads < 0) throw Error("quantize_model: thread count " + std::to_string(o.threads) + " is negative");
  if (o.threads == 0) return quantize_planned(model, plan, o);
  tbb::task_arena arena(o.threads);
  return arena.execute([&] { return quantize_planned(model, plan, o); });
}

QuantizePlan quantize_model(const std::filesystem::path& in, const std::filesystem::path& out,
                            const QuantizeModelOptions& o) {
  // Before any work: an output that is the input (any spelling, hard link or symlink),
  // a special file, or a folder where nothing can be created (lowbit/io/files.hpp).
  check_output_path(out, {in});
  const GgufFile model = GgufFile::open(in);
  QuantizePlan plan = plan_model_quantization(model, o);
  quantize_model(model, plan, o).write(out);
  return plan;
}

}  // namespace lowbit
