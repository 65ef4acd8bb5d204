// The C API: status and errors, version, threads and log, formats, whole-matrix and
// row-kernel quantization (include/lowbit/lowbit.h).
#include <limits>
#include <span>
#include <string>
#include <string_view>

#include "c_api/c_api.hpp"
#include "lowbit/core/log.hpp"
#include "lowbit/core/parallel.hpp"
#include "lowbit/formats/quantize.hpp"
#include "lowbit/kernels/gsq_gemv.hpp"
#include "lowbit/kernels/registry.hpp"
#include "lowbit/version.hpp"

static_assert(LOWBIT_VERSION_MAJOR == lowbit::kVersionMajor && LOWBIT_VERSION_MINOR == lowbit::kVersionMinor &&
                  LOWBIT_VERSION_PATCH == lowbit::kVersionPatch,
              "lowbit.h and lowbit/version.hpp disagree on the version");
static_assert(std::string_view(LOWBIT_VERSION_STRING) == std::string_view(lowbit::kVersionString),
              "lowbit.h and lowbit/version.hpp disagree on the version string");

namespace lowbit_capi {
namespace {
thread_local std::string t_last_error;
}  // namespace

lowbit_status set_error(const char* function, lowbit_status status, const std::string& message) noexcept {
  try {
    t_last_error = std::string(function) + ": " + message;
  } catch (...) {
    t_last_error.clear();  // no memory for the message: the status still tells
  }
  return status;
}

Format to_format(lowbit_format id) {
  try {
    return format_from_ggml_type(id);
  } catch (const Error&) {
    fail(LOWBIT_ERROR_NOT_FOUND, "unknown format id " + std::to_string(id) + " (a GGML type id lowbit implements)");
  }
}

size_t checked_mul(size_t a, size_t b, const char* what) {
  size_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) fail(LOWBIT_ERROR_INVALID_ARGUMENT, std::string(what) + " overflows size_t");
  return r;
}

size_t matrix_span(const char* what, int64_t rows, int64_t cols, int64_t& stride) {
  if (rows < 0 || cols < 1)
    fail(LOWBIT_ERROR_INVALID_ARGUMENT, std::string(what) + ": bad shape " + std::to_string(rows) + " x " +
                                            std::to_string(cols) + " (rows >= 0, cols >= 1)");
  if (stride == 0) stride = cols;
  if (stride < cols)
    fail(LOWBIT_ERROR_INVALID_ARGUMENT, std::string(what) + ": row stride " + std::to_string(stride) +
                                            " is smaller than the row length " + std::to_string(cols));
  if (rows == 0) return 0;
  const size_t before_last = checked_mul(static_cast<size_t>(rows - 1), static_cast<size_t>(stride), what);
  return before_last + static_cast<size_t>(cols);
}

void check_size(const char* what, size_t have, size_t need, const char* unit) {
  if (have < need)
    fail(LOWBIT_ERROR_BUFFER_TOO_SMALL, std::string(what) + " holds " + std::to_string(have) + " " + unit + ", " +
                                            std::to_string(need) + " are needed");
}

void check_optional_vector(const char* what, const float* p, size_t len, int64_t cols) {
  if (p == nullptr) {
    if (len != 0)
      fail(LOWBIT_ERROR_INVALID_ARGUMENT, std::string(what) + " is NULL but its length is " + std::to_string(len));
    return;
  }
  if (len != static_cast<size_t>(cols))
    fail(LOWBIT_ERROR_INVALID_ARGUMENT, std::string(what) + " has " + std::to_string(len) +
                                            " entries, expected one per column (" + std::to_string(cols) + ")");
}

}  // namespace lowbit_capi

using namespace lowbit;
using namespace lowbit_capi;

namespace {

void fill_info(const FormatTraits& t, lowbit_format_info* out) {
  out->format = t.ggml_type;
  out->name = t.name.data();  // the traits' names are string literals: NUL-terminated
  out->block_size = t.block_elems;
  out->block_bytes = t.block_bytes;
  out->quantized = t.quantized ? 1 : 0;
  out->activation_only = t.activation_only ? 1 : 0;
  out->bits_per_weight = t.bits_per_weight();
}

}  // namespace

namespace {

// lowbit_quantize and lowbit_quantize_effort, inside their guard().
void quantize_matrix(lowbit_format format, const float* src, size_t src_len, int64_t rows, int64_t cols,
                     int64_t src_stride, const float* importance, size_t importance_len, QuantizeEffort effort,
                     void* dst, size_t dst_size) {
  const Format f = to_format(format);
  const size_t need = matrix_span("src", rows, cols, src_stride);
  if (rows > 0) {
    require(src, "src");
    require(dst, "dst");
  }
  check_size("src", src_len, need, "floats");
  check_optional_vector("importance", importance, importance_len, cols);
  const size_t out = checked_mul(static_cast<size_t>(rows), row_bytes(f, cols), "rows x row size");
  check_size("dst", dst_size, out, "bytes");
  if (rows == 0) return;
  quantize(f, ConstMatrixView<float>(src, rows, cols, src_stride), std::span<std::byte>(static_cast<std::byte*>(dst), out),
           importance ? std::span<const float>(importance, importance_len) : std::span<const float>(), effort);
}

}  // namespace

extern "C" {

const char* lowbit_last_error(void) { return lowbit_capi::t_last_error.c_str(); }

const char* lowbit_status_name(lowbit_status status) {
  switch (enum_value(&status)) {
    case LOWBIT_OK: return "LOWBIT_OK";
    case LOWBIT_ERROR: return "LOWBIT_ERROR";
    case LOWBIT_ERROR_INVALID_ARGUMENT: return "LOWBIT_ERROR_INVALID_ARGUMENT";
    case LOWBIT_ERROR_BUFFER_TOO_SMALL: return "LOWBIT_ERROR_BUFFER_TOO_SMALL";
    case LOWBIT_ERROR_NOT_FOUND: return "LOWBIT_ERROR_NOT_FOUND";
    case LOWBIT_ERROR_TYPE_MISMATCH: return "LOWBIT_ERROR_TYPE_MISMATCH";
    case LOWBIT_ERROR_OUT_OF_MEMORY: return "LOWBIT_ERROR_OUT_OF_MEMORY";
    case LOWBIT_ERROR_CANCELLED: return "LOWBIT_ERROR_CANCELLED";
    case LOWBIT_ERROR_INTERNAL: return "LOWBIT_ERROR_INTERNAL";
  }
  return "unknown status";
}

const char* lowbit_version(void) { return LOWBIT_VERSION_STRING; }
int lowbit_abi_version(void) { return LOWBIT_ABI_VERSION; }

lowbit_status lowbit_set_num_threads(int threads) {
  return guard(__func__, [&] {
    if (threads < 0) fail(LOWBIT_ERROR_INVALID_ARGUMENT, "thread count " + std::to_string(threads) + " is negative");
    set_num_threads(threads);
  });
}

int lowbit_get_num_threads(void) {
  try {
    return num_threads();
  } catch (...) {
    return 1;
  }
}

lowbit_status lowbit_set_log_level(lowbit_log_level level) {
  return guard(__func__, [&] {
    const int v = enum_value(&level);
    if (v < LOWBIT_LOG_TRACE || v > LOWBIT_LOG_OFF)
      fail(LOWBIT_ERROR_INVALID_ARGUMENT,
           "log level " + std::to_string(v) + " is not one of LOWBIT_LOG_TRACE (0) .. LOWBIT_LOG_OFF (5)");
    set_log_level(static_cast<LogLevel>(v));
  });
}

lowbit_status lowbit_set_log_callback(lowbit_log_fn callback, void* user) {
  return guard(__func__, [&] {
    if (callback == nullptr) {
      set_log_sink({});
      return;
    }
    set_log_sink([callback, user](LogLevel level, std::string_view message) {
      const std::string text(message);  // NUL-terminated for C
      callback(static_cast<lowbit_log_level>(level), text.c_str(), text.size(), user);
    });
  });
}

size_t lowbit_format_count(void) { return all_formats().size(); }

lowbit_status lowbit_format_info_at(size_t index, lowbit_format_info* out) {
  return guard(__func__, [&] {
    require(out, "out");
    const auto all = all_formats();
    if (index >= all.size())
      fail(LOWBIT_ERROR_NOT_FOUND, "format index " + std::to_string(index) + " is out of range (" +
                                       std::to_string(all.size()) + " formats)");
    fill_info(all[index], out);
  });
}

lowbit_status lowbit_format_info_by_id(lowbit_format format, lowbit_format_info* out) {
  return guard(__func__, [&] {
    require(out, "out");
    fill_info(traits(to_format(format)), out);
  });
}

lowbit_status lowbit_format_info_by_name(const char* name, lowbit_format_info* out) {
  return guard(__func__, [&] {
    require(name, "name");
    require(out, "out");
    const auto f = format_from_name(name);
    if (!f) {
      std::string names;
      for (const FormatTraits& t : all_formats()) {
        if (!names.empty()) names += ' ';
        names += t.name;
      }
      fail(LOWBIT_ERROR_NOT_FOUND, "unknown format '" + std::string(name) + "' (one of: " + names + ")");
    }
    fill_info(traits(*f), out);
  });
}

lowbit_status lowbit_row_size(lowbit_format format, int64_t cols, size_t* out_bytes) {
  return guard(__func__, [&] {
    require(out_bytes, "out_bytes");
    const Format f = to_format(format);
    if (cols < 0) fail(LOWBIT_ERROR_INVALID_ARGUMENT, "column count " + std::to_string(cols) + " is negative");
    *out_bytes = row_bytes(f, cols);
  });
}

lowbit_status lowbit_quantized_size(lowbit_format format, int64_t rows, int64_t cols, size_t* out_bytes) {
  return guard(__func__, [&] {
    require(out_bytes, "out_bytes");
    const Format f = to_format(format);
    if (rows < 0 || cols < 0)
      fail(LOWBIT_ERROR_INVALID_ARGUMENT, "bad shape " + std::to_string(rows) + " x " + std::to_string(cols));
    *out_bytes = checked_mul(static_cast<size_t>(rows), row_bytes(f, cols), "rows x row size");
  });
}

lowbit_status lowbit_quantize(lowbit_format format, const float* src, size_t src_len, int64_t rows, int64_t cols,
                              int64_t src_stride, const float* importance, size_t importance_len, void* dst,
                              size_t dst_size) {
  return guard(__func__, [&] {
    quantize_matrix(format, src, src_len, rows, cols, src_stride, importance, importance_len,
                    QuantizeEffort::standard, dst, dst_size);
  });
}

lowbit_status lowbit_quantize_effort(lowbit_format format, const float* src, size_t src_len, int64_t rows,
                                     int64_t cols, int64_t src_stride, const float* importance, size_t importance_len,
                                     lowbit_effort effort, void* dst, size_t dst_size) {
  return guard(__func__, [&] {
    const int e = enum_value(&effort);
    if (e < LOWBIT_EFFORT_FAST || e > LOWBIT_EFFORT_BEST)
      fail(LOWBIT_ERROR_INVALID_ARGUMENT, "unknown effort " + std::to_string(e) + " (0 fast, 1 default, 2 best)");
    const QuantizeEffort qe = e == LOWBIT_EFFORT_FAST      ? QuantizeEffort::fast
                              : e == LOWBIT_EFFORT_DEFAULT ? QuantizeEffort::standard
                                                           : QuantizeEffort::best;
    quantize_matrix(format, src, src_len, rows, cols, src_stride, importance, importance_len, qe, dst, dst_size);
  });
}

lowbit_status lowbit_dequantize(lowbit_format format, const void* src, size_t src_size, int64_t rows, int64_t cols,
                                float* dst, size_t dst_len, int64_t dst_stride) {
  return guard(__func__, [&] {
    const Format f = to_format(format);
    const size_t need = matrix_span("dst", rows, cols, dst_stride);
    if (rows > 0) {
      require(src, "src");
      require(dst, "dst");
    }
    const size_t in = checked_mul(static_cast<size_t>(rows), row_bytes(f, cols), "rows x row size");
    check_size("src", src_size, in, "bytes");
    check_size("dst", dst_len, need, "floats");
    if (rows == 0) return;
    dequantize(f, std::span<const std::byte>(static_cast<const std::byte*>(src), in),
               MatrixView<float>(dst, rows, cols, dst_stride));
  });
}

lowbit_status lowbit_quantize_row(lowbit_format format, const float* x, int64_t n, const float* importance,
                                  size_t importance_len, void* y, size_t y_size) {
  return guard(__func__, [&] {
    const Format f = to_format(format);
    if (n < 0) fail(LOWBIT_ERROR_INVALID_ARGUMENT, "element count " + std::to_string(n) + " is negative");
    const size_t bytes = row_bytes(f, n);  // Error naming the format for a partial block
    if (n == 0) return;
    require(x, "x");
    require(y, "y");
    check_optional_vector("importance", importance, importance_len, n);
    check_size("y", y_size, bytes, "bytes");
    select_quantize_kernel(f).fn(x, y, n, importance);
  });
}

lowbit_status lowbit_dequantize_row(lowbit_format format, const void* x, size_t x_size, float* y, int64_t n) {
  return guard(__func__, [&] {
    const Format f = to_format(format);
    if (n < 0) fail(LOWBIT_ERROR_INVALID_ARGUMENT, "element count " + std::to_string(n) + " is negative");
    const size_t bytes = row_bytes(f, n);
    if (n == 0) return;
    require(x, "x");
    require(y, "y");
    check_size("x", x_size, bytes, "bytes");
    select_dequantize_kernel(f).fn(x, y, n);
  });
}

lowbit_status lowbit_kernel_name(lowbit_kernel_family family, lowbit_format format, const char** out_name) {
  return guard(__func__, [&] {
    require(out_name, "out_name");
    const int f = enum_value(&family);
    switch (f) {
      case LOWBIT_KERNEL_QUANTIZE: *out_name = select_quantize_kernel(to_format(format)).name; return;
      case LOWBIT_KERNEL_DEQUANTIZE: *out_name = select_dequantize_kernel(to_format(format)).name; return;
      case LOWBIT_KERNEL_GSQ_GEMV: *out_name = gsq_gemv_kernels().select(GsqPackedLayout{}).name; return;
    }
    fail(LOWBIT_ERROR_INVALID_ARGUMENT, "unknown kernel family " + std::to_string(f));
  });
}

}  // extern "C"
