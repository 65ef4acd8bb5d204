// libFuzzer target for the Hugging Face GPTQ checkpoint loader
// (lowbit/io/hf_checkpoint.hpp). An input is split in two: a little-endian u16
// length L, then L bytes of quantize_config.json, then the model.safetensors bytes.
// Both become files of a checkpoint folder (two symlinks to in-memory files), which
// load_hf_gptq_checkpoint reads. It must refuse with lowbit::Error or return layers
// with sane parameters; each layer then goes through from_hf_gptq (which validates
// the layout) and, when that accepts it, is dequantized.
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "lowbit/gsq/hf_layout.hpp"
#include "lowbit/gsq/quantizer.hpp"
#include "lowbit/io/hf_checkpoint.hpp"

namespace {

using lowbit_fuzz::require;

// Dequantizing is bounded so the harness, not the loader, never dominates the time.
constexpr int64_t kMaxDequantizeElements = int64_t{1} << 18;

// A checkpoint folder whose two files are symlinks to in-memory files.
class Checkpoint {
 public:
  Checkpoint() : config_("lowbit-fuzz-hf-config"), tensors_("lowbit-fuzz-hf-tensors") {
    char tmpl[] = "/tmp/lowbit-fuzz-hf-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) lowbit_fuzz::MemFile::die("mkdtemp failed");
    dir_ = tmpl;
    std::filesystem::create_symlink(config_.write("", 0), dir_ / "quantize_config.json");
    std::filesystem::create_symlink(tensors_.write("", 0), dir_ / "model.safetensors");
    dir_name_ = dir_.string();
    ::atexit([] { remove_dir(); });
  }
  const std::filesystem::path& load(const uint8_t* data, size_t size) {
    const size_t len = size >= 2 ? std::min<size_t>(data[0] | (size_t{data[1]} << 8), size - 2) : 0;
    const uint8_t* config = data + (size >= 2 ? 2 : size);
    config_.write(config, len);
    tensors_.write(config + len, size - (config - data) - len);
    return dir_;
  }
  static void remove_dir() {
    std::error_code ec;
    if (!dir_name_.empty()) std::filesystem::remove_all(dir_name_, ec);
  }

 private:
  lowbit_fuzz::MemFile config_, tensors_;
  std::filesystem::path dir_;
  static inline std::string dir_name_;
};

void check(const std::vector<lowbit::HfGptqLayer>& layers) {
  for (const lowbit::HfGptqLayer& l : layers) {
    const lowbit::HfGptqTensors& t = l.tensors;
    require(t.bits >= 1 && t.bits <= 32, "layer " + l.name + ": bits out of range");
    require(t.in_features > 0 && t.out_features > 0, "layer " + l.name + ": empty layer accepted");
    require(t.group_size > 0, "layer " + l.name + ": group size not positive");
    require(t.format_version == 1 || t.format_version == 2, "layer " + l.name + ": bad format version");
    lowbit::GsqResult q;
    try {
      q = lowbit::from_hf_gptq(t);
    } catch (const lowbit::Error&) {
      continue;  // the layout checks refuse it: fine
    }
    require(q.rows == t.out_features && q.cols == t.in_features, "layer " + l.name + ": shape changed");
    if (q.rows * q.cols > kMaxDequantizeElements) continue;
    std::vector<float> w(static_cast<size_t>(q.rows * q.cols));
    lowbit::gsq_dequantize(q, {w.data(), q.rows, q.cols});
    for (float v : w) require(std::isfinite(v), "layer " + l.name + ": dequantized to a non-finite value");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Checkpoint checkpoint;
  const std::filesystem::path& dir = checkpoint.load(data, size);
  std::vector<lowbit::HfGptqLayer> layers;
  try {
    layers = lowbit::load_hf_gptq_checkpoint(dir);
  } catch (const lowbit::Error&) {
    return 0;
  } catch (const std::exception& e) {
    require(false, std::string("load_hf_gptq_checkpoint threw something other than lowbit::Error: ") + e.what());
  }
  try {
    check(layers);
  } catch (const std::exception& e) {
    require(false, std::string("an accepted checkpoint threw: ") + e.what());
  }
  return 0;
}
