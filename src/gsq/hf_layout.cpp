#include "lowbit/gsq/hf_layout.hpp"

#include <cmath>
#include <string>

#include "common/checks.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/gsq/packing.hpp"

namespace lowbit {
namespace {

// "[a, b]"
std::string dims(int64_t a, int64_t b) { return detail::shape_list({a, b}); }

void require(bool ok, const std::string& msg) {
  if (!ok) throw Error("HF GPTQ layout: " + msg);
}

}  // namespace

HfGptqTensors to_hf_gptq(const GsqResult& q, int version) {
  const GsqConfig& c = q.config;
  require(version == 1 || version == 2, "format version " + std::to_string(version) + " (expected 1 or 2)");
  require(c.scheme != GsqScheme::asymmetric_float,
          "a float minimum per group (" + c.describe() + ") cannot be stored as integer qzeros");
  require(c.scale_storage == ScaleStorage::fp16 && !c.double_quant,
          "scales are stored as fp16; quantize with fp16 scale storage and no double quantization (" + c.describe() + ")");
  require(q.cols * c.bits % 32 == 0, "in_features * bits = " + std::to_string(q.cols * c.bits) + " is not a multiple of 32");
  require(q.rows * c.bits % 32 == 0, "out_features * bits = " + std::to_string(q.rows * c.bits) + " is not a multiple of 32");

  HfGptqTensors t;
  t.bits = c.bits;
  t.group_size = static_cast<int>(q.group());
  t.in_features = q.cols;
  t.out_features = q.rows;
  t.format_version = version;
  t.sym = c.scheme == GsqScheme::symmetric;
  const int64_t words_in = q.cols * c.bits / 32, words_out = q.rows * c.bits / 32, groups = q.groups();

  // qweight: our rows (outputs) are already packed along the input; transpose.
  t.qweight.resize(static_cast<size_t>(words_in * q.rows));
  for (int64_t r = 0; r < q.rows; ++r)
    for (int64_t k = 0; k < words_in; ++k)
      t.qweight[k * q.rows + r] = static_cast<int32_t>(q.qweight[r * q.words_per_row() + k]);

  t.scales.resize(static_cast<size_t>(groups * q.rows));
  t.qzeros.resize(static_cast<size_t>(groups * words_out));
  std::vector<uint32_t> zeros(static_cast<size_t>(q.rows)), packed(static_cast<size_t>(words_out));
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t r = 0; r < q.rows; ++r) {
      const GroupParams p = q.params(r, g);
      t.scales[g * q.rows + r] = fp32_to_fp16(p.scale);  // exact: the scale is an fp16 value
      if (version == 1 && p.zero == 0)
        throw Error("HF GPTQ layout v1: zero point 0 in row " + std::to_string(r) + ", group " + std::to_string(g) +
                    " cannot be stored as zero - 1 in " + std::to_string(c.bits) +
                    " bits (AutoGPTQ would wrap it); export v2 or quantize symmetrically");
      zeros[r] = static_cast<uint32_t>(p.zero - (version == 1 ? 1 : 0));
    }
    pack_codes(zeros, c.bits, packed);
    for (int64_t k = 0; k < words_out; ++k) t.qzeros[g * words_out + k] = static_cast<int32_t>(packed[k]);
  }
  t.g_idx.resize(static_cast<size_t>(q.cols));
  for (int64_t i = 0; i < q.cols; ++i) t.g_idx[i] = static_cast<int32_t>(q.group_of(i));
  return t;
}

GsqResult from_hf_gptq(const HfGptqTensors& t) {
  GsqConfig c;
  c.bits = t.bits;
  c.group_size = t.group_size == t.in_features ? 0 : t.group_size;
  c.scheme = t.sym ? GsqScheme::symmetric : GsqScheme::asymmetric;
  c.search = ScaleSearch::rtn;
  c.validate();
  require(t.format_version == 1 || t.format_version == 2, "format version " + std::to_string(t.format_version));
  require(t.in_features > 0 && t.out_features > 0, "shape " + dims(t.out_features, t.in_features));
  require(t.group_size > 0 && t.in_features % t.group_size == 0,
          "group size " + std::to_string(t.group_size) + " does not divide in_features " + std::to_string(t.in_features));
  require(t.in_features * t.bits % 32 == 0 && t.out_features * t.bits % 32 == 0,
          "in_features and out_features times bits must be multiples of 32");
  const int64_t words_in = t.in_features * t.bits / 32, words_out = t.out_features * t.bits / 32, groups = t.groups();
  require(static_cast<int64_t>(t.qweight.size()) == words_in * t.out_features,
          "qweight has " + std::to_string(t.qweight.size()) + " entries, expected " + dims(words_in, t.out_features));
  require(static_cast<int64_t>(t.qzeros.size()) == groups * words_out,
          "qzeros has " + std::to_string(t.qzeros.size()) + " entries, expected " + dims(groups, words_out));
  require(static_cast<int64_t>(t.scales.size()) == groups * t.out_features,
          "scales has " + std::to_string(t.scales.size()) + " entries, expected " + dims(groups, t.out_features));
  require(static_cast<int64_t>(t.g_idx.size()) == t.in_features,
          "g_idx has " + std::to_string(t.g_idx.size()) + " entries, expected " + std::to_string(t.in_features));
  bool contiguous = true;
  for (int64_t i = 0; i < t.in_features; ++i) {
    require(t.g_idx[i] >= 0 && t.g_idx[i] < groups, "g_idx[" + std::to_string(i) + "] = " + std::to_string(t.g_idx[i]) +
                                                        " is outside [0, " + std::to_string(groups) + ")");
    contiguous = contiguous && t.g_idx[i] == i / t.group_size;
  }

  GsqResult q;
  q.config = c;
  q.rows = t.out_features;
  q.cols = t.in_features;
  if (!contiguous) q.g_idx = t.g_idx;  // act-order checkpoint
  q.qweight.resize(static_cast<size_t>(q.rows * words_in));
  for (int64_t r = 0; r < q.rows; ++r)
    for (int64_t k = 0; k < words_in; ++k) q.qweight[r * words_in + k] = static_cast<uint32_t>(t.qweight[k * q.rows + r]);
  q.scales.resize(static_cast<size_t>(q.rows * groups));
  q.zeros.resize(static_cast<size_t>(q.rows * groups));
  const int32_t maxq = (1 << t.bits) - 1;
  for (int64_t g = 0; g < groups; ++g) {
    const auto* words = reinterpret_cast<const uint32_t*>(t.qzeros.data() + g * words_out);
    for (int64_t r = 0; r < q.rows; ++r) {
      const float s = fp16_to_fp32(t.scales[g * q.rows + r]);
      require(std::isfinite(s), "scales[" + std::to_string(g) + ", " + std::to_string(r) + "] is not finite");
      int32_t z = static_cast<int32_t>(unpack_code(words, t.bits, r)) + (t.format_version == 1 ? 1 : 0);
      // Only v1 can overflow: a stored 2^b - 1 means zero 2^b, AutoGPTQ's wrap of a true zero of 0.
      require(z <= maxq, "v1 qzeros[" + std::to_string(g) + ", " + std::to_string(r) + "] decodes to zero point " +
                             std::to_string(z) + ", outside [0, " + std::to_string(maxq) + "] (a wrapped zero of 0?)");
      q.scales[r * groups + g] = s;
      q.zeros[r * groups + g] = z;
    }
  }
  return q;
}

}  // namespace lowbit
