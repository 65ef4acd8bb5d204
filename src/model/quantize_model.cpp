#include "lowbit/model/quantize_model.hpp"

#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <bit>
#include <limits>
#include <set>
#include <span>
#include <utility>

#include "common/log.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/core/parallel.hpp"
#include "lowbit/gptq/ggml_target.hpp"
#include "lowbit/gsq/ggml_mapping.hpp"
#include "lowbit/gsq/quantizer.hpp"
#include "lowbit/formats/quantize.hpp"
#include "lowbit/io/files.hpp"
#include "lowbit/io/gguf_stream.hpp"
#include "lowbit/model/bpw_allocation.hpp"
#include "model/kld_probe.hpp"
#include "model/sequential_gptq.hpp"

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
  // An empty tensor has nothing to weight, however many slices its shape names (a
  // file may declare [ne0, 0, 2^40]); replicating the vector per slice would not fit.
  int64_t elements = 1;
  for (int64_t d : t.shape) elements = d == 0 ? 0 : elements;
  if (elements == 0) return;
  int64_t per_matrix = 0;
  if (__builtin_mul_overflow(ne0, t.slices, &per_matrix))
    throw Error("tensor '" + t.name + "': row length " + std::to_string(ne0) + " x " + std::to_string(t.slices) +
                " matrices overflows");
  if (n == static_cast<size_t>(per_matrix)) {
    t.importance = v;
  } else if (n == static_cast<size_t>(ne0)) {
    t.importance.reserve(static_cast<size_t>(per_matrix));
    for (int64_t s = 0; s < t.slices; ++s) t.importance.insert(t.importance.end(), v.begin(), v.end());
  } else if (t.name == "token_embd.weight" || t.name == "per_layer_token_embd.weight") {
    // Embedding lookups are not matrix products; llama.cpp ignores a mismatch here too.
    detail::logger().warn("{}: imatrix has {} values for a row length of {}: ignored", t.name, n, ne0);
  } else {
    throw Error("imatrix entry '" + t.name + "' has " + std::to_string(n) + " values but the tensor needs " +
                std::to_string(ne0) + " (row length) or " + std::to_string(per_matrix) + " (per matrix)");
  }
}

// Reports converted elements to options.progress, then asks options.cancelled.
class ProgressSink {
 public:
  ProgressSink(const QuantizeModelOptions& o, int64_t total) : fn_(o.progress), cancelled_(o.cancelled), total_(total) {}
  void advance(int64_t elements) {
    if (!silent_) {
      done_ += elements;
      if (fn_) fn_(done_, total_);
    }
    check_cancelled();
  }
  // Work that was counted already (a resumed tensor quantized again): only the
  // cancellation check.
  void set_silent(bool silent) { silent_ = silent; }
  void check_cancelled() const {
    if (cancelled_ && cancelled_()) throw QuantizeCancelled();
  }

 private:
  const std::function<void(int64_t, int64_t)>& fn_;
  const std::function<bool()>& cancelled_;
  int64_t total_, done_ = 0;
  bool silent_ = false;
};

// Rows are quantized in chunks of about this many elements so progress moves.
constexpr int64_t kChunkElements = int64_t{1} << 22;

// ImportanceObjective::ggml_blend: row by row, each element's weight is
// importance[col] x sqrt(sigma2 + w^2), sigma2 = 2 x mean(w^2) over the element's
// 256-element super-block (K-quants, IQ4_XS) or its row (32-element formats), as
// ggml's quantizers weigh an imatrix.
void quantize_rows_blended(Format f, const float* w, int64_t rows, int64_t cols, std::span<const float> imp,
                           std::span<std::byte> dst, QuantizeEffort effort) {
  const size_t rb = row_bytes(f, cols);
  const int64_t span = traits(f).block_elems >= 256 ? traits(f).block_elems : cols;
  parallel_for(rows, 1, [&](int64_t r0, int64_t r1) {
    std::vector<float> weights(static_cast<size_t>(cols));
    for (int64_t r = r0; r < r1; ++r) {
      const float* x = w + r * cols;
      for (int64_t b = 0; b < cols; b += span) {
        double sum = 0;
        for (int64_t j = b; j < b + span; ++j) sum += double(x[j]) * x[j];
        const double sigma2 = 2.0 * sum / double(span);
        for (int64_t j = b; j < b + span; ++j)
          weights[static_cast<size_t>(j)] = static_cast<float>(double(imp[static_cast<size_t>(j)]) * std::sqrt(sigma2 + double(x[j]) * x[j]));
      }
      quantize(f, {x, 1, cols}, dst.subspan(static_cast<size_t>(r) * rb, rb), weights, effort);
    }
  });
}

std::vector<std::byte> quantize_rtn(Format f, const std::vector<float>& w, int64_t rows, int64_t cols,
                                    const std::vector<float>& imp, int64_t rows_per_slice, QuantizeEffort effort,
                                    ProgressSink& progress,
                                    ImportanceObjective objective = ImportanceObjective::pure) {
  std::vector<std::byte> out(quantized_size(f, rows, cols));
  const size_t rb = row_bytes(f, cols);
  // QuantizeEffort::fast is ggml's own search, which blends by itself.
  const bool blend = objective == ImportanceObjective::ggml_blend && effort != QuantizeEffort::fast &&
                     traits(f).quantized && !imp.empty();
  const int64_t chunk = std::max<int64_t>(1, kChunkElements / cols);
  for (int64_t r0 = 0; r0 < rows;) {
    const int64_t slice = r0 / rows_per_slice;
    const int64_t r1 = std::min({rows, r0 + chunk, (slice + 1) * rows_per_slice});  // never cross a slice
    std::span<const float> slice_imp;
    if (!imp.empty())
      slice_imp = std::span<const float>(imp).subspan(static_cast<size_t>(slice * cols), static_cast<size_t>(cols));
    const std::span<std::byte> dst =
        std::span<std::byte>(out).subspan(static_cast<size_t>(r0) * rb, static_cast<size_t>(r1 - r0) * rb);
    if (blend)
      quantize_rows_blended(f, w.data() + r0 * cols, r1 - r0, cols, slice_imp, dst, effort);
    else
      quantize(f, {w.data() + r0 * cols, r1 - r0, cols}, dst, slice_imp, effort);
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

// GPTQ per matrix: a 2-D tensor with its Hessian, each expert of a 3-D tensor with its
// own (expert_hessian_name) or else the tensor's shared one. A matrix without a Hessian
// is quantized with rtn and its importance (logged).
std::vector<std::byte> quantize_gptq(Format f, const std::vector<float>& w, int64_t rows, int64_t cols,
                                     const PlannedTensor& t, const HessianSource& hessians, const GptqConfig& gptq,
                                     QuantizeEffort effort, ProgressSink& progress) {
  const int64_t rows_per_slice = rows / t.slices;
  const size_t slice_bytes = static_cast<size_t>(rows_per_slice) * row_bytes(f, cols);
  std::vector<std::byte> out(static_cast<size_t>(t.slices) * slice_bytes);
  std::shared_ptr<const HessianAccumulator> shared;
  bool shared_looked = false;
  int64_t without = 0;
  for (int64_t s = 0; s < t.slices; ++s) {
    std::shared_ptr<const HessianAccumulator> h;
    std::string hname = t.name;
    if (t.slices > 1) {
      hname = expert_hessian_name(t.name, s);
      h = hessians.get ? hessians.get(hname) : nullptr;
    }
    if (!h) {
      if (!shared_looked) shared = hessians.get ? hessians.get(t.name) : nullptr, shared_looked = true;
      h = shared;
      hname = t.name;
    }
    std::span<const float> slice_imp;
    if (!t.importance.empty())
      slice_imp = std::span<const float>(t.importance).subspan(static_cast<size_t>(s * cols), static_cast<size_t>(cols));
    std::span<std::byte> dst = std::span<std::byte>(out).subspan(static_cast<size_t>(s) * slice_bytes, slice_bytes);
    const MatrixView<const float> m{w.data() + s * rows_per_slice * cols, rows_per_slice, cols};
    if (!h) {
      ++without;
      quantize(f, m, dst, slice_imp, effort);
      progress.advance(rows_per_slice * cols);
      continue;
    }
    const std::string where = hessians.describe ? hessians.describe(hname) : std::string();
    if (h->cols() != cols)
      throw Error((where.empty() ? std::string() : where + ": ") + "Hessian " +
                  (hname == t.name ? std::string() : "'" + hname + "' ") + "for " + std::to_string(h->cols()) +
                  " columns, tensor '" + t.name + "' has " + std::to_string(cols));
    const std::vector<float> imp = slice_imp.empty() ? h->importance() : std::vector<float>(slice_imp.begin(), slice_imp.end());
    GgmlTarget target(f, imp, effort);
    const GptqReport rep = gptq_solve(gptq, m, *h, target);
    if (rep.damp_retries > 0) detail::logger().info("{}: GPTQ damping raised to {:.3f}", hname, rep.damp_percent_used);
    const std::vector<std::byte> q = target.result();
    std::copy(q.begin(), q.end(), dst.begin());
    progress.advance(rows_per_slice * cols);
  }
  if (without == t.slices) {
    const std::string where = hessians.describe ? hessians.describe(t.name) : std::string();
    detail::logger().info("{}: no Hessian{}, quantized with rtn{}", t.name, where.empty() ? "" : " (" + where + ")",
                          t.importance.empty() ? "" : " and the imatrix");
  } else if (without > 0) {
    detail::logger().info("{}: {} of {} experts have no Hessian ('{}' or '{}'), quantized with rtn{}", t.name, without,
                          t.slices, expert_hessian_name(t.name, 0), t.name,
                          t.importance.empty() ? "" : " and the imatrix");
  }
  return out;
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
  if (quantized && o.method == QuantMethod::gptq) return quantize_gptq(to, w, rows, cols, t, o.hessians, o.gptq, o.effort, progress);
  return quantize_rtn(to, w, rows, cols, t.importance, rows / t.slices, o.effort, progress, o.importance_objective);
}

void check_plan_matches(const GgufFile& model, const QuantizePlan& plan) {
  if (plan.tensors.size() != model.tensors().size())
    throw Error("quantize_model: the plan has " + std::to_string(plan.tensors.size()) + " tensors, the model " +
                std::to_string(model.tensors().size()) + " (a plan of another file?)");
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const PlannedTensor& t = plan.tensors[i];
    const GgufTensorInfo& info = model.tensors()[i];
    if (info.name != t.name || info.format != t.from || info.shape != t.shape)
      throw Error("quantize_model: plan tensor " + std::to_string(i) + " is '" + t.name + "', the model's is '" +
                  info.name + "' (a plan of another file?)");
  }
}

// The output's metadata: the input's in file order, general.file_type and
// general.quantization_version set, the input's shard keys (split.*) dropped (a
// split output gets its own from GgufStreamWriter).
GgufWriter output_metadata(const GgufFile& model, const QuantizeModelOptions& o) {
  GgufWriter writer;
  writer.copy_metadata(model);
  writer.set("general.quantization_version", GgufValue(uint32_t{2}));
  writer.set("general.file_type", GgufValue(o.scheme.file_type));
  for (const char* key : {"split.no", "split.count", "split.tensors.count"}) writer.remove(key);
  return writer;
}

// The order in which tensors are produced and written: file order, except with a
// calibration (sequential GPTQ), where the blocks come in block order (files often
// list them by name: blk.1, blk.10, ..., blk.2) so at most one block's output waits
// for its turn, and the output matrix follows the last block, whose outputs give it
// its importance. Tensors outside the blocks keep their place before or after them.
std::vector<size_t> write_order(const QuantizePlan& plan, const QuantizeModelOptions& o) {
  std::vector<size_t> order(plan.tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  if (!o.calibration) return order;
  const auto block_of = [](const std::string& n) -> int64_t {
    if (!n.starts_with("blk.")) return -1;
    const size_t dot = n.find('.', 4);
    if (dot == std::string::npos || dot == 4) return -1;
    int64_t b = 0;
    for (size_t k = 4; k < dot; ++k) {
      if (n[k] < '0' || n[k] > '9' || b > (int64_t{1} << 40)) return -1;
      b = b * 10 + (n[k] - '0');
    }
    return b;
  };
  const bool tied = std::none_of(plan.tensors.begin(), plan.tensors.end(),
                                 [](const PlannedTensor& t) { return t.name == "output.weight"; });
  const std::string output = tied ? "token_embd.weight" : "output.weight";
  std::vector<int64_t> key(plan.tensors.size());
  bool seen_block = false;
  for (size_t i = 0; i < key.size(); ++i) {
    const int64_t b = block_of(plan.tensors[i].name);
    seen_block = seen_block || b >= 0;
    key[i] = b >= 0 ? b : seen_block ? std::numeric_limits<int64_t>::max() - 1 : -1;
    if (plan.tensors[i].name == output) key[i] = std::numeric_limits<int64_t>::max();
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key[a] < key[b]; });
  return order;
}

// Walks the plan in write_order from its `first` tensor: emit(index, bytes) gets each
// tensor's output bytes (a view into the model for a tensor kept as stored), after
// which the input pages of that tensor are released. Tensors before `first` (resumed)
// only count towards progress and on_tensor.
template <class Emit>
void run_plan(const GgufFile& model, const QuantizePlan& plan, const QuantizeModelOptions& o, size_t first,
              Emit&& emit) {
  check_plan_matches(model, plan);
  const std::vector<size_t> order = write_order(plan, o);
  ProgressSink progress(o, plan.work);
  // True-sequential GPTQ: the block weights come from the calibration driver (which
  // quantizes a whole block at a time, each tensor with the Hessian it collected).
  std::unique_ptr<detail::SequentialGptq> seq;
  std::set<std::string> resumed;
  for (size_t k = 0; k < first && k < order.size(); ++k) resumed.insert(plan.tensors[order[k]].name);
  if (o.calibration)
    seq = std::make_unique<detail::SequentialGptq>(
        model, plan, *o.calibration,
        [&](const PlannedTensor& t, const std::vector<float>& w, const std::shared_ptr<const HessianAccumulator>& h) {
          const int64_t cols = t.shape[0], rows = t.elements() / cols;
          progress.set_silent(resumed.contains(t.name));  // counted when it was skipped
          std::vector<std::byte> bytes;
          if (!traits(t.to()).quantized) {
            bytes = quantize_rtn(t.to(), w, rows, cols, {}, rows, o.effort, progress);
          } else {
            HessianSource one;
            one.get = [h](const std::string&) { return h; };
            bytes = quantize_gptq(t.to(), w, rows, cols, t, one, o.gptq, o.effort, progress);
          }
          progress.set_silent(false);
          return bytes;
        });
  for (size_t k = 0; k < order.size(); ++k) {
    const size_t i = order[k];
    const PlannedTensor& t = plan.tensors[i];
    const GgufTensorInfo& info = model.tensors()[i];
    progress.check_cancelled();
    if (k < first) {
      if (t.converts()) progress.advance(info.elements());
      if (seq && seq->covers(t.name)) seq->skip(t.name);
    } else if (!t.converts()) {
      emit(i, model.data(info));
    } else if (seq && seq->covers(t.name)) {
      const std::vector<std::byte> bytes = seq->take(t.name);  // errors name their tensor
      emit(i, std::span<const std::byte>(bytes));
    } else {
      std::vector<std::byte> bytes;
      try {
        if (seq && traits(t.to()).quantized && info.elements() > 0) {
          // Outside the blocks (token embedding, output matrix): rtn.
          std::string why;
          PlannedTensor r = t;
          r.importance = seq->outside_importance(t.name, why);
          if (r.importance.size() != static_cast<size_t>(info.row_length())) r.importance.clear();  // 2-D only
          detail::logger().info("{}: rtn ({})", t.name, why);
          std::vector<float> w(static_cast<size_t>(info.elements()));
          dequantize(info.format, model.data(info), {w.data(), info.rows(), info.row_length()});
          bytes = quantize_rtn(t.to(), w, info.rows(), info.row_length(), r.importance, info.rows() / t.slices,
                               o.effort, progress, o.importance_objective);
        } else {
          bytes = convert(model, info, t, o, progress);
        }
      } catch (const QuantizeCancelled&) {
        throw;
      } catch (const Error& e) {
        throw Error("tensor '" + t.name + "' (" + std::string(format_name(t.from)) + " -> " +
                    std::string(format_name(t.to())) + "): " + e.what());
      }
      emit(i, std::span<const std::byte>(bytes));
    }
    model.release(info);
    if (o.on_tensor) o.on_tensor(t);
  }
}

template <class F>
auto in_arena(const QuantizeModelOptions& o, F&& f) {
  if (o.threads < 0) throw Error("quantize_model: thread count " + std::to_string(o.threads) + " is negative");
  if (o.threads == 0) return f();
  tbb::task_arena arena(o.threads);
  return arena.execute(f);
}

uint64_t mix(uint64_t h, uint64_t v) {
  h = (h ^ v) * 0xff51afd7ed558ccdull;
  return h ^ (h >> 32);
}

// What besides the layout decides the output's bytes, for GgufStreamWriter's resume
// check: each input file's identity (path, size, modification time), the method and
// its settings, and every tensor's target type and importance.
std::string resume_key(const GgufFile& model, const QuantizePlan& plan, const QuantizeModelOptions& o) {
  std::string key = "lowbit-quantize 1 method=" + std::string(to_string(o.method));
  // The standard effort adds nothing, so journals written before efforts existed still resume.
  if (o.effort != QuantizeEffort::standard) key += " effort=" + std::string(to_string(o.effort));
  if (o.importance_objective != ImportanceObjective::pure) key += " objective=ggml_blend";
  for (const auto& p : model.paths()) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(p, ec);
    const auto mtime = std::filesystem::last_write_time(p, ec).time_since_epoch().count();
    key += " in=" + std::filesystem::absolute(p).string() + ":" + std::to_string(size) + ":" + std::to_string(mtime);
  }
  if (o.method == QuantMethod::gptq) {
    const GptqConfig& g = o.gptq;
    key += " gptq=" + std::to_string(g.damp_percent) + "," + std::to_string(g.max_damp_retries) + "," +
           std::to_string(g.damp_step) + "," + std::to_string(g.block_size) + "," + std::to_string(g.act_order) +
           std::to_string(g.static_groups) + std::to_string(g.fit_groups_on_updated_weights);
    if (o.hessians.describe && !plan.tensors.empty()) key += " hessians=" + o.hessians.describe(plan.tensors[0].name);
    if (o.calibration) {
      uint64_t th = 0;
      for (unsigned char c : o.calibration->text) th = mix(th, c);
      key += " calib=" + std::to_string(th) + ":" + std::to_string(o.calibration->text.size()) + "," +
             std::to_string(o.calibration->ctx) + "," + std::to_string(o.calibration->chunks);
    }
  }
  uint64_t h = 0;
  for (const PlannedTensor& t : plan.tensors) {
    h = mix(h, static_cast<uint64_t>(t.to()));
    h = mix(h, t.importance.size());
    for (float v : t.importance) h = mix(h, std::bit_cast<uint32_t>(v));
  }
  return key + " plan=" + std::to_string(h);
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

// The candidate types of --target-bpw, smallest first.
constexpr Format kBpwCandidates[] = {Format::Q2_K, Format::Q3_K, Format::Q4_K, Format::Q5_K, Format::Q6_K, Format::Q8_0};

// Sum over the tensor of importance[col] * (w - q)^2 (importance 1 without an imatrix).
// The quantized bytes are left in `q`.
double weighted_error(Format f, const std::vector<float>& w, int64_t rows, int64_t cols, const PlannedTensor& t,
                      QuantizeEffort effort, std::vector<std::byte>& q) {
  q.assign(quantized_size(f, rows, cols), std::byte{0});
  std::vector<float> back(w.size());
  const int64_t rows_per_slice = rows / t.slices;
  const size_t rb = row_bytes(f, cols);
  for (int64_t s = 0; s < t.slices; ++s) {
    std::span<const float> imp;
    if (!t.importance.empty())
      imp = std::span<const float>(t.importance).subspan(static_cast<size_t>(s * cols), static_cast<size_t>(cols));
    quantize(f, {w.data() + s * rows_per_slice * cols, rows_per_slice, cols},
             std::span<std::byte>(q).subspan(static_cast<size_t>(s * rows_per_slice) * rb,
                                             static_cast<size_t>(rows_per_slice) * rb),
             imp, effort);
  }
  dequantize(f, q, {back.data(), rows, cols});
  double total = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t s = r / rows_per_slice;
    const float* imp = t.importance.empty() ? nullptr : t.importance.data() + s * cols;
    double row = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const double d = double(w[r * cols + c]) - double(back[r * cols + c]);
      row += (imp ? double(imp[c]) : 1.0) * d * d;
    }
    total += row;
  }
  return total;
}

// --target-bpw: measures each free tensor's error in every candidate type once (rtn
// with its importance), then lets allocate_types choose within the byte budget.
void allocate_for_target_bpw(const GgufFile& model, QuantizePlan& plan, const QuantizeModelOptions& o) {
  const double bpw = *o.target_bpw;
  int64_t elements = 0;
  uint64_t fixed = 0;
  std::vector<size_t> free;
  std::vector<std::vector<TypeCandidate>> items;
  // With a calibration text, each block weight's errors are put in the unit of the
  // model's output: KL divergence per unit of weighted error, measured by replacing
  // that weight alone with its probe candidate (the second smallest: the regime the
  // budget decides in). Tensors the runtime cannot swap get the median ratio.
  std::unique_ptr<detail::KldProbe> probe;
  if (o.target_bpw_calibration) probe = std::make_unique<detail::KldProbe>(model.path().string(), *o.target_bpw_calibration);
  std::vector<double> ratio;  // per free tensor; NaN: not probed
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    PlannedTensor& t = plan.tensors[i];
    const GgufTensorInfo& info = model.tensors()[i];
    elements += info.elements();
    if (!t.plan.quantizable || t.plan.overridden || info.elements() == 0) {
      fixed += t.converts() && info.elements() ? quantized_size(t.to(), info.rows(), info.row_length()) : info.nbytes;
      continue;
    }
    PlannedTensor with_importance = t;
    if (o.imatrix) {
      try {
        attach_importance(*o.imatrix, with_importance);
      } catch (const Error&) {
        with_importance.importance.clear();  // reported by the planning pass that follows
      }
    }
    std::vector<float> w(static_cast<size_t>(info.elements()));
    dequantize(info.format, model.data(info), {w.data(), info.rows(), info.row_length()});
    std::vector<TypeCandidate> cands;
    std::vector<std::vector<std::byte>> bytes;
    const bool probed = probe && probe->can_probe(t.name);
    for (Format f : kBpwCandidates) {
      Format use = f;
      if (info.row_length() % traits(f).block_elems != 0) {
        // The row-length fallback, as the rules apply it.
        const TensorPlan fb = plan_tensor(QuantScheme{"", 0, f, true}, plan.model, t.name, t.shape, t.from);
        use = fb.format;
      }
      if (!traits(use).quantized) continue;
      if (std::any_of(cands.begin(), cands.end(), [&](const TypeCandidate& c) { return c.format == use; })) continue;
      std::vector<std::byte> q;
      cands.push_back({use, quantized_size(use, info.rows(), info.row_length()),
                       weighted_error(use, w, info.rows(), info.row_length(), with_importance, o.effort, q)});
      if (probed && cands.size() <= 2) bytes.push_back(std::move(q));
    }
    model.release(info);
    double r = std::numeric_limits<double>::quiet_NaN();
    if (probed && !cands.empty()) {
      const size_t k = cands.size() > 1 ? 1 : 0;
      const double kld = probe->kld_with(t.name, cands[k].format, std::move(bytes[k]));
      if (cands[k].error > 0) r = kld / cands[k].error;
      detail::logger().debug("--target-bpw: {} in {}: KLD {:.4g}, weighted error {:.4g}", t.name,
                             format_name(cands[k].format), kld, cands[k].error);
    }
    if (cands.empty()) {  // no candidate fits the row length: the rules' type stays
      fixed += t.converts() ? quantized_size(t.to(), info.rows(), info.row_length()) : info.nbytes;
      continue;
    }
    free.push_back(i);
    items.push_back(std::move(cands));
    ratio.push_back(r);
  }
  if (probe) {
    std::vector<double> measured;
    for (double r : ratio)
      if (std::isfinite(r)) measured.push_back(r);
    std::sort(measured.begin(), measured.end());
    const double median = measured.empty() ? 1.0 : measured[measured.size() / 2];
    // A weight whose probe did not move the output still costs something in a
    // cheaper type: floor the ratio at a thousandth of the median.
    const double floor = 1e-3 * median;
    size_t guessed = 0;
    for (size_t k = 0; k < items.size(); ++k) {
      double r = ratio[k];
      if (!std::isfinite(r)) r = median, ++guessed;
      r = std::max(r, floor);
      for (TypeCandidate& c : items[k]) c.error *= r;
    }
    detail::logger().info("--target-bpw: KL divergence per unit of error measured for {} of {} tensors on {} "
                          "positions ({} others take the median, {:.4g})",
                          items.size() - guessed, items.size(), probe->positions(), guessed, median);
  }
  const double budget_bytes = bpw * double(elements) / 8.0;
  if (budget_bytes < double(fixed))
    throw Error("--target-bpw " + std::to_string(bpw) + ": the tensors whose type is fixed already take " +
                std::to_string(fixed) + " bytes, over the budget of " + std::to_string(uint64_t(budget_bytes)));
  const auto budget = static_cast<uint64_t>(std::floor(budget_bytes)) - fixed;
  const TypeAllocation a = allocate_types(items, budget);
  for (size_t k = 0; k < free.size(); ++k) {
    PlannedTensor& t = plan.tensors[free[k]];
    t.plan.format = items[k][a.choice[k]].format;
    t.plan.fallback_from.reset();
  }
  detail::logger().info("--target-bpw {}: {} tensors allocated, {} bytes of {} (+{} fixed), error {:.6g} "
                        "(at most {:.3g} above the optimum)",
                        bpw, free.size(), a.bytes, budget, fixed, a.error, a.bound);
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
  if (o.calibration) {
    if (o.method != QuantMethod::gptq)
      throw Error("quantize_model: a calibration text is for method gptq (true-sequential GPTQ), not " +
                  std::string(to_string(o.method)));
    if (o.hessians.get) throw Error("quantize_model: method gptq takes Hessians or a calibration text, not both");
    if (o.imatrix)
      throw Error("quantize_model: sequential GPTQ collects its own importance; an imatrix cannot be added to it");
    detail::check_calibration(model, *o.calibration);
  }
  if (o.target_bpw_calibration && !o.target_bpw)
    throw Error("quantize_model: a target_bpw calibration text without target_bpw");
  if (o.method == QuantMethod::gptq && !o.hessians.get && !o.calibration)
    throw Error("quantize_model: method gptq needs Hessians (QuantizeModelOptions::hessians) or a calibration text "
                "(QuantizeModelOptions::calibration)");
  QuantizePlan plan;
  plan.model = ModelInfo::from_gguf(model);
  // Calibrated quantization is quantization with an imatrix, for the rules too.
  plan.model.has_imatrix = o.imatrix.has_value() || o.calibration.has_value();
  detail::logger().info("{}: {} tensors, architecture '{}', {} layers, GQA {}; target {}", model.path().string(),
                        model.tensors().size(), plan.model.architecture, plan.model.n_layer, plan.model.n_gqa(),
                        ftype_line(o.scheme));

  for (const GgufTensorInfo& info : model.tensors()) {
    PlannedTensor t;
    t.name = info.name;
    t.shape = info.shape;
    t.from = info.format;
    t.plan = plan_tensor(o.scheme, plan.model, info.name, info.shape, info.format, o.overrides);
    for (size_t d = 2; d < info.shape.size(); ++d) t.slices *= info.shape[d];
    if (t.slices == 0) t.slices = 1;  // an empty tensor: nothing to split
    plan.tensors.push_back(std::move(t));
  }
  if (o.target_bpw) allocate_for_target_bpw(model, plan, o);

  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    PlannedTensor& t = plan.tensors[i];
    const GgufTensorInfo& info = model.tensors()[i];
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
  return in_arena(o, [&] {
    GgufWriter writer = output_metadata(model, o);
    run_plan(model, plan, o, 0, [&](size_t i, std::span<const std::byte> bytes) {
      const PlannedTensor& t = plan.tensors[i];
      if (!t.converts())
        writer.add_tensor(t.name, t.shape, t.from, bytes);  // kept as stored (borrowed bytes)
      else
        writer.add_tensor(t.name, t.shape, t.to(), std::vector<std::byte>(bytes.begin(), bytes.end()));
    });
    return writer;
  });
}

std::string expert_hessian_name(std::string_view tensor, int64_t expert) {
  return std::string(tensor) + "#" + std::to_string(expert);
}

std::vector<std::filesystem::path> write_quantized_model(const GgufFile& model, const QuantizePlan& plan,
                                                         const QuantizeModelOptions& o,
                                                         const std::filesystem::path& out) {
  check_plan_matches(model, plan);
  const std::vector<std::filesystem::path> inputs = model.paths();
  GgufWriter layout = output_metadata(model, o);
  for (size_t i : write_order(plan, o)) layout.declare_tensor(plan.tensors[i].name, plan.tensors[i].shape, plan.tensors[i].to());
  GgufStreamOptions so;
  so.split = o.split;
  so.resume = o.resume;
  so.resume_key = resume_key(model, plan, o);
  GgufStreamWriter writer(layout, out, so);
  for (const auto& p : writer.paths()) check_output_path(p, inputs);
  if (o.resume) {
    if (writer.resumed() > 0)
      detail::logger().info("resuming: {} of {} tensors verified in place", writer.resumed(), writer.tensor_count());
    else
      detail::logger().info("--resume: no usable partial output of an earlier run, starting from the first tensor");
  }
  try {
    in_arena(o, [&] {
      run_plan(model, plan, o, writer.resumed(), [&](size_t, std::span<const std::byte> bytes) { writer.write(bytes); });
      return 0;
    });
  } catch (const QuantizeCancelled&) {
    // A caller that runs resumably keeps what is done for the next run; otherwise a
    // cancelled run leaves nothing behind, like a failed one.
    if (o.resume) writer.keep_partial();
    throw;
  }
  return writer.finish();
}

QuantizePlan quantize_model(const std::filesystem::path& in, const std::filesystem::path& out,
                            const QuantizeModelOptions& o) {
  // Before any work: an output that is the input (any spelling, hard link or symlink),
  // a special file, or a folder where nothing can be created (lowbit/io/files.hpp).
  check_output_path(out, {in});
  const GgufFile model = GgufFile::open(in);
  QuantizePlan plan = plan_model_quantization(model, o);
  write_quantized_model(model, plan, o, out);
  return plan;
}

}  // namespace lowbit
