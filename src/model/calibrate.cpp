#include "lowbit/model/calibrate.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "lowbit/core/error.hpp"
#include "lowbit/io/files.hpp"
#include "lowbit/io/gguf.hpp"

namespace lowbit {
namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The weight whose input `name` shares (q/k/v: q's, gate/up: gate's), so one Hessian
// serves the group.
std::string hessian_owner(std::string_view name) {
  std::string s(name);
  for (auto [from, to] : {std::pair<const char*, const char*>{"attn_k.weight", "attn_q.weight"},
                          {"attn_v.weight", "attn_q.weight"},
                          {"ffn_up.weight", "ffn_gate.weight"}})
    if (ends_with(s, from)) return s.substr(0, s.size() - std::string_view(from).size()) + to;
  return s;
}

}  // namespace

Calibration calibrate(const LlamaModel& model, std::string_view text, const CalibrationOptions& options) {
  const int64_t ctx = options.ctx;
  if (ctx < 1) throw Error("calibrate: the context must be at least 1 token, got " + std::to_string(ctx));
  const Tokenizer& tok = model.tokenizer();
  const std::vector<int32_t> tokens = tok.tokenize(text, true, false);
  const auto n = static_cast<int64_t>(tokens.size());
  if (n < ctx)
    throw Error("calibrate: the text has " + std::to_string(n) + " tokens, fewer than one window of " +
                std::to_string(ctx));
  Calibration c;
  c.chunk_size = ctx;
  c.chunks = options.chunks > 0 ? std::min(options.chunks, n / ctx) : n / ctx;
  c.dataset = options.dataset;
  const std::string output = model.linear_weights().back();
  LlamaContext lc(model, ctx);
  lc.set_observer([&](std::string_view weight, ConstMatrixView<float> x) {
    const std::string name(weight);
    if (name == output) return;
    auto [it, fresh] = c.in_sum2.try_emplace(name, static_cast<size_t>(x.cols), 0.0);
    if (fresh) c.weights.push_back(name);
    std::vector<double>& s = it->second;
    for (int64_t r = 0; r < x.rows; ++r)
      for (int64_t j = 0; j < x.cols; ++j) s[static_cast<size_t>(j)] += static_cast<double>(x(r, j)) * x(r, j);
    c.counts[name] += x.rows;
    if (!options.hessians) return;
    const std::string owner = hessian_owner(name);
    auto& h = c.hessians[name];
    if (owner != name) {
      h = c.hessians.at(owner);  // the owner ran first, on the same input
      return;
    }
    if (!h) h = std::make_shared<HessianAccumulator>(x.cols);
    h->add(x);
  });
  for (int64_t k = 0; k < c.chunks; ++k) {
    std::vector<int32_t> window(tokens.begin() + k * ctx, tokens.begin() + (k + 1) * ctx);
    if (tok.add_bos() && tok.bos() >= 0) window[0] = tok.bos();
    lc.clear();
    lc.decode(window, false);
    if (options.progress) options.progress(k + 1, c.chunks);
  }
  return c;
}

void write_imatrix(const Calibration& c, const std::filesystem::path& path) {
  if (c.weights.empty()) throw Error("write_imatrix " + path.string() + ": no weights were collected");
  GgufWriter w;
  w.set("general.type", "imatrix");
  const std::vector<std::string> datasets{c.dataset};
  w.set("imatrix.datasets", GgufValue::array_of_strings(datasets));
  w.set("imatrix.chunk_count", static_cast<uint32_t>(c.chunks));
  w.set("imatrix.chunk_size", static_cast<uint32_t>(c.chunk_size));
  std::vector<std::string> names = c.weights;
  std::sort(names.begin(), names.end());  // llama-imatrix stores its entries by name
  for (const std::string& name : names) {
    const std::vector<double>& s = c.in_sum2.at(name);
    std::vector<std::byte> sums(s.size() * sizeof(float)), count(sizeof(float));
    for (size_t i = 0; i < s.size(); ++i) {
      const auto v = static_cast<float>(s[i]);
      std::memcpy(sums.data() + i * sizeof(float), &v, sizeof(float));
    }
    const auto n = static_cast<float>(c.counts.at(name));
    std::memcpy(count.data(), &n, sizeof(float));
    w.add_tensor(name + ".in_sum2", {static_cast<int64_t>(s.size()), 1}, Format::F32, std::move(sums));
    w.add_tensor(name + ".counts", {1, 1}, Format::F32, std::move(count));
  }
  w.write(path);
}

void save_hessians(const Calibration& c, const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error("cannot create the Hessian directory " + dir.string() + ": " + ec.message());
  for (const std::string& name : c.weights) {
    auto it = c.hessians.find(name);
    if (it == c.hessians.end() || !it->second) continue;
    it->second->save((dir / tensor_file_name(name, ".hess")).string());
  }
}

}  // namespace lowbit
