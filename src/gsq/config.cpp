#include "lowbit/gsq/config.hpp"

#include <cmath>

#include "lowbit/core/error.hpp"

namespace lowbit {

const char* to_string(GsqScheme s) {
  switch (s) {
    case GsqScheme::symmetric: return "sym";
    case GsqScheme::asymmetric: return "asym";
    case GsqScheme::asymmetric_float: return "asym-fmin";
  }
  return "?";
}

const char* to_string(ScaleSearch s) {
  switch (s) {
    case ScaleSearch::rtn: return "rtn";
    case ScaleSearch::mse: return "mse";
    case ScaleSearch::importance: return "importance";
    case ScaleSearch::hqq: return "hqq";
  }
  return "?";
}

const char* to_string(ScaleStorage s) {
  switch (s) {
    case ScaleStorage::fp16: return "fp16";
    case ScaleStorage::bf16: return "bf16";
    case ScaleStorage::fp32: return "fp32";
  }
  return "?";
}

void GsqConfig::validate() const {
  auto fail = [](const std::string& m) { throw Error("GSQ config: " + m); };
  if (bits != 2 && bits != 3 && bits != 4 && bits != 5 && bits != 6 && bits != 8)
    fail("bits = " + std::to_string(bits) + " is not supported (2, 3, 4, 5, 6 or 8)");
  if (group_size != 0 && group_size != 32 && group_size != 64 && group_size != 128 && group_size != 256)
    fail("group_size = " + std::to_string(group_size) + " is not supported (32, 64, 128, 256, or 0 for per-channel)");
  if (search == ScaleSearch::hqq && scheme == GsqScheme::symmetric)
    fail("the hqq search optimises a zero point and needs an asymmetric scheme");
  if (!(mse_norm > 0) || !std::isfinite(mse_norm)) fail("mse_norm must be positive");
  if (mse_grid < 1) fail("mse_grid = " + std::to_string(mse_grid) + " must be at least 1");
  if (!(mse_max_shrink > 0 && mse_max_shrink < 1)) fail("mse_max_shrink must lie in (0, 1)");
  if (hqq_iters < 1 || !(hqq_p > 0 && hqq_p <= 1) || !(hqq_beta > 0) || !(hqq_kappa >= 1))
    fail("hqq parameters out of range (iters >= 1, 0 < p <= 1, beta > 0, kappa >= 1)");
}

std::string GsqConfig::describe() const {
  // Appends rather than a chain of operator+ (GCC 12 warns falsely on the latter).
  std::string s = std::to_string(bits);
  s += "-bit ";
  if (group_size == 0) {
    s += "per-channel";
  } else {
    s += "g";
    s += std::to_string(group_size);
  }
  for (const char* part : {to_string(scheme), to_string(search), to_string(scale_storage)}) {
    s += ' ';
    s += part;
  }
  if (double_quant) s += " dq";
  return s;
}

}  // namespace lowbit
