// The C API: GSQ quantize / pack / decode / GEMV, the Hessian handle and GPTQ
// (include/lowbit/lowbit.h).
#include <algorithm>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "c_api/c_api.hpp"
#include "lowbit/core/parallel.hpp"
#include "lowbit/formats/quantize.hpp"
#include "lowbit/gptq/ggml_target.hpp"
#include "lowbit/gptq/hessian.hpp"
#include "lowbit/gptq/solver.hpp"
#include "lowbit/gptq/target.hpp"
#include "lowbit/gsq/packing.hpp"
#include "lowbit/gsq/quantizer.hpp"
#include "lowbit/kernels/gsq_gemv.hpp"

struct lowbit_hessian {
  lowbit::HessianAccumulator h;
};

using namespace lowbit;
using namespace lowbit_capi;

namespace {

constexpr int64_t kDoubleQuantBlock = 256;  // groups per second-level scale (gsq/quantizer.cpp)

GsqScheme to_scheme(int32_t v) {
  if (v < LOWBIT_GSQ_SYMMETRIC || v > LOWBIT_GSQ_ASYMMETRIC_FLOAT)
    fail(LOWBIT_ERROR_INVALID_ARGUMENT, "GSQ scheme " + std::to_string(v) +
                                            " is not one of LOWBIT_GSQ_SYMMETRIC (0) .. LOWBIT_GSQ_ASYMMETRIC_FLOAT (2)");
  return static_cast<GsqScheme>(v);
}

GsqConfig to_config(const lowbit_gsq_config* c) {
  require(c, "config");
  GsqConfig g;
  g.bits = c->bits;
  g.group_size = c->group_size;
  g.scheme = to_scheme(c->scheme);
  if (c->search < LOWBIT_GSQ_SEARCH_RTN || c->search > LOWBIT_GSQ_SEARCH_HQQ)
    fail(LOWBIT_ERROR_INVALID_ARGUMENT, "GSQ search " + std::to_string(c->search) +
                                            " is not one of LOWBIT_GSQ_SEARCH_RTN (0) .. LOWBIT_GSQ_SEARCH_HQQ (3)");
  g.search = static_cast<ScaleSearch>(c->search);
  if (c->scale_storage < LOWBIT_GSQ_SCALES_FP16 || c->scale_storage > LOWBIT_GSQ_SCALES_FP32)
    fail(LOWBIT_ERROR_INVALID_ARGUMENT, "GSQ scale storage " + std::to_string(c->scale_storage) +
                                            " is not one of LOWBIT_GSQ_SCALES_FP16 (0) .. LOWBIT_GSQ_SCALES_FP32 (2)");
  g.scale_storage = static_cast<ScaleStorage>(c->scale_storage);
  g.double_quant = c->double_quant != 0;
  g.mse_norm = c->mse_norm;
  g.mse_grid = c->mse_grid;
  g.mse_max_shrink = c->mse_max_shrink;
  g.hqq_iters = c->hqq_iters;
  g.hqq_p = c->hqq_p;
  g.hqq_beta = c->hqq_beta;
  g.hqq_kappa = c->hqq_kappa;
  g.validate();
  return g;
}

lowbit_gsq_sizes sizes_for(const GsqConfig& cfg, int64_t rows, int64_t cols) {
  if (rows < 0 || cols < 1)
    fail(LOWBIT_ERROR_INVALID_ARGUMENT,
         "bad shape " + std::to_string(rows) + " x " + std::to_string(cols) + " (rows >= 0, cols >= 1)");
  const int64_t group = cfg.resolved_group(cols);
  if (cols % group != 0)
    throw Error("GSQ " + cfg.describe() + ": group size " + std::to_string(cfg.group_size) +
                " does not divide the row length " + std::to_string(cols));
  lowbit_gsq_sizes s{};
  s.groups_per_row = cols / group;
  s.words_per_row = packed_words(cols, cfg.bits);
  const auto n_groups = checked_mul(static_cast<size_t>(rows), static_cast<size_t>(s.groups_per_row), "groups");
  s.qweight_len = checked_mul(static_cast<size_t>(rows), static_cast<size_t>(s.words_per_row), "packed words");
  s.scales_len = n_groups;
  s.zeros_len = n_groups;
  s.mins_len = cfg.scheme == GsqScheme::asymmetric_float ? n_groups : 0;
  s.scale_codes_len = cfg.double_quant ? n_groups : 0;
  s.scale_blocks_len = cfg.double_quant ? (n_groups + kDoubleQuantBlock - 1) / kDoubleQuantBlock : 0;
  s.g_idx_len = static_cast<size_t>(cols);
  return s;
}

template <class T>
void check_out_array(const char* what, T* p, size_t len, size_t need) {
  if (need == 0) return;
  require(p, what);
  check_size(what, len, need, "elements");
}

// Checks every output array before any work.
void check_output(const lowbit_gsq_output* out, const lowbit_gsq_sizes& s, bool needs_g_idx) {
  require(out, "out");
  check_out_array("out->qweight", out->qweight, out->qweight_len, s.qweight_len);
  check_out_array("out->scales", out->scales, out->scales_len, s.scales_len);
  check_out_array("out->zeros", out->zeros, out->zeros_len, s.zeros_len);
  check_out_array("out->mins", out->mins, out->mins_len, s.mins_len);
  check_out_array("out->scale_codes", out->scale_codes, out->scale_codes_len, s.scale_codes_len);
  check_out_array("out->scale_blocks", out->scale_blocks, out->scale_blocks_len, s.scale_blocks_len);
  if (needs_g_idx && out->g_idx == nullptr)
    fail(LOWBIT_ERROR_INVALID_ARGUMENT,
         "out->g_idx is NULL, but act-order without static groups scatters the groups over the columns: "
         "the result cannot be decoded without it");
  if (out->g_idx) check_size("out->g_idx", out->g_idx_len, s.g_idx_len, "elements");
}

template <class T>
void copy_out(T* dst, const std::vector<T>& src) {
  if (!src.empty()) std::memcpy(dst, src.data(), src.size() * sizeof(T));
}

void write_output(const GsqResult& q, const lowbit_gsq_sizes& s, const lowbit_gsq_output* out) {
  if (q.qweight.size() != s.qweight_len || q.scales.size() != s.scales_len || q.zeros.size() != s.zeros_len ||
      q.mins.size() != s.mins_len || q.scale_codes.size() != s.scale_codes_len ||
      q.scale_blocks.size() != s.scale_blocks_len)
    throw std::logic_error("GSQ result sizes differ from lowbit_gsq_sizes_for");
  copy_out(out->qweight, q.qweight);
  copy_out(out->scales, q.scales);
  copy_out(out->zeros, q.zeros);
  copy_out(out->mins, q.mins);
  copy_out(out->scale_codes, q.scale_codes);
  copy_out(out->scale_blocks, q.scale_blocks);
  if (out->g_idx)
    for (int64_t c = 0; c < q.cols; ++c) out->g_idx[c] = static_cast<int32_t>(q.group_of(c));
}

std::span<const float> optional_span(const float* p, size_t n) {
  return p ? std::span<const float>(p, n) : std::span<const float>();
}

// A caller's packed matrix, checked: sizes, parameters, every g_idx entry.
struct CheckedMatrix {
  GsqConfig cfg;
  int64_t group = 0, groups = 0, words = 0;
  GsqMatrixRef ref{};
};

CheckedMatrix check_matrix(const lowbit_gsq_matrix* m) {
  require(m, "matrix");
  CheckedMatrix c;
  c.cfg.bits = m->bits;
  c.cfg.group_size = m->group_size;
  c.cfg.scheme = to_scheme(m->scheme);
  c.cfg.search = ScaleSearch::rtn;
  c.cfg.validate();
  const lowbit_gsq_sizes s = sizes_for(c.cfg, m->rows, m->cols);
  c.group = c.cfg.resolved_group(m->cols);
  c.groups = s.groups_per_row;
  c.words = s.words_per_row;
  const bool float_min = c.cfg.scheme == GsqScheme::asymmetric_float;
  if (m->rows > 0) {
    require(m->qweight, "matrix->qweight");
    require(m->scales, "matrix->scales");
    check_size("matrix->qweight", m->qweight_len, s.qweight_len, "elements");
    check_size("matrix->scales", m->scales_len, s.scales_len, "elements");
    if (float_min) {
      require(m->mins, "matrix->mins (ASYMMETRIC_FLOAT)");
      check_size("matrix->mins", m->mins_len, s.mins_len, "elements");
    } else {
      require(m->zeros, "matrix->zeros");
      check_size("matrix->zeros", m->zeros_len, s.zeros_len, "elements");
    }
  }
  if (m->g_idx) {
    check_size("matrix->g_idx", m->g_idx_len, static_cast<size_t>(m->cols), "elements");
    for (int64_t k = 0; k < m->cols; ++k)
      if (m->g_idx[k] < 0 || m->g_idx[k] >= c.groups)
        fail(LOWBIT_ERROR_INVALID_ARGUMENT, "matrix->g_idx[" + std::to_string(k) + "] = " +
                                                std::to_string(m->g_idx[k]) + " is not a group in [0, " +
                                                std::to_string(c.groups) + ")");
  }
  c.ref = GsqMatrixRef{m->qweight, m->scales,   float_min ? nullptr : m->zeros, float_min ? m->mins : nullptr,
                       m->g_idx,   m->bits,     m->rows,                         m->cols,
                       c.group,    c.words};
  return c;
}

GptqConfig to_gptq_config(const lowbit_gptq_config* c) {
  GptqConfig g;
  if (c) {
    g.damp_percent = c->damp_percent;
    g.max_damp_retries = c->max_damp_retries;
    g.damp_step = c->damp_step;
    g.block_size = c->block_size;
    g.act_order = c->act_order != 0;
    g.static_groups = c->static_groups != 0;
    g.fit_groups_on_updated_weights = c->fit_groups_on_updated_weights != 0;
  }
  g.validate();
  return g;
}

void fill_report(const GptqReport& r, lowbit_gptq_report* out) {
  if (!out) return;
  out->damp_percent_used = r.damp_percent_used;
  out->damp_retries = r.damp_retries;
  out->dead_columns = r.dead_columns;
}

// The weights and importance a GPTQ call got, checked against the Hessian.
std::vector<float> gptq_importance(const char* fn_what, const HessianAccumulator& h, const float* w, size_t w_len,
                                   int64_t rows, int64_t cols, int64_t& stride, const float* importance,
                                   size_t importance_len) {
  const size_t need = matrix_span(fn_what, rows, cols, stride);
  if (rows > 0) require(w, "w");
  check_size("w", w_len, need, "floats");
  if (h.cols() != cols)
    fail(LOWBIT_ERROR_INVALID_ARGUMENT, "the Hessian has " + std::to_string(h.cols()) + " columns, w has " +
                                            std::to_string(cols));
  check_optional_vector("importance", importance, importance_len, cols);
  return importance ? std::vector<float>(importance, importance + importance_len) : h.importance();
}

}  // namespace

extern "C" {

lowbit_status lowbit_gsq_config_init(lowbit_gsq_config* config) {
  return guard(__func__, [&] {
    require(config, "config");
    const GsqConfig d;
    *config = lowbit_gsq_config{};
    config->bits = d.bits;
    config->group_size = d.group_size;
    config->scheme = static_cast<int32_t>(d.scheme);
    config->search = static_cast<int32_t>(d.search);
    config->scale_storage = static_cast<int32_t>(d.scale_storage);
    config->double_quant = d.double_quant ? 1 : 0;
    config->mse_norm = d.mse_norm;
    config->mse_grid = d.mse_grid;
    config->mse_max_shrink = d.mse_max_shrink;
    config->hqq_iters = d.hqq_iters;
    config->hqq_p = d.hqq_p;
    config->hqq_beta = d.hqq_beta;
    config->hqq_kappa = d.hqq_kappa;
  });
}

lowbit_status lowbit_gsq_sizes_for(const lowbit_gsq_config* config, int64_t rows, int64_t cols,
                                   lowbit_gsq_sizes* out) {
  return guard(__func__, [&] {
    require(out, "out");
    *out = sizes_for(to_config(config), rows, cols);
  });
}

lowbit_status lowbit_gsq_quantize(const lowbit_gsq_config* config, const float* w, size_t w_len, int64_t rows,
                                  int64_t cols, int64_t stride, const float* importance, size_t importance_len,
                                  const lowbit_gsq_output* out) {
  return guard(__func__, [&] {
    const GsqConfig cfg = to_config(config);
    const lowbit_gsq_sizes s = sizes_for(cfg, rows, cols);
    const size_t need = matrix_span("w", rows, cols, stride);
    if (rows > 0) require(w, "w");
    check_size("w", w_len, need, "floats");
    check_optional_vector("importance", importance, importance_len, cols);
    check_output(out, s, false);
    const GsqResult q =
        gsq_quantize(cfg, ConstMatrixView<float>(w, rows, cols, stride), optional_span(importance, importance_len));
    write_output(q, s, out);
  });
}

lowbit_status lowbit_gsq_dequantize(const lowbit_gsq_matrix* m, float* out, size_t out_len) {
  return guard(__func__, [&] {
    const CheckedMatrix c = check_matrix(m);
    const size_t n = checked_mul(static_cast<size_t>(m->rows), static_cast<size_t>(m->cols), "rows x cols");
    if (n > 0) require(out, "out");
    check_size("out", out_len, n, "floats");
    if (n == 0) return;
    // Borrowing would need a non-owning GsqResult; the copy costs far less than the decode.
    GsqResult q;
    q.config = c.cfg;
    q.rows = m->rows;
    q.cols = m->cols;
    const size_t n_groups = static_cast<size_t>(m->rows * c.groups);
    q.qweight.assign(m->qweight, m->qweight + static_cast<size_t>(m->rows * c.words));
    q.scales.assign(m->scales, m->scales + n_groups);
    if (c.ref.mins) {
      q.mins.assign(m->mins, m->mins + n_groups);
      q.zeros.assign(n_groups, 0);
    } else {
      q.zeros.assign(m->zeros, m->zeros + n_groups);
    }
    if (m->g_idx) q.g_idx.assign(m->g_idx, m->g_idx + m->cols);
    gsq_dequantize(q, MatrixView<float>(out, m->rows, m->cols));
  });
}

lowbit_status lowbit_gsq_gemv(const lowbit_gsq_matrix* m, const float* x, size_t x_len, float* y, size_t y_len) {
  return guard(__func__, [&] {
    const CheckedMatrix c = check_matrix(m);
    if (m->rows == 0) return;
    require(x, "x");
    require(y, "y");
    if (x_len != static_cast<size_t>(m->cols))
      fail(LOWBIT_ERROR_INVALID_ARGUMENT,
           "x has " + std::to_string(x_len) + " entries, the matrix " + std::to_string(m->cols) + " columns");
    check_size("y", y_len, static_cast<size_t>(m->rows), "floats");
    const GsqGemvFn fn = gsq_gemv_kernels().select(GsqPackedLayout{}).fn;
    const GsqMatrixRef ref = c.ref;
    parallel_for(m->rows, 16, [&](int64_t r0, int64_t r1) { fn(ref, x, y, r0, r1); });
  });
}

lowbit_status lowbit_hessian_create(int64_t cols, lowbit_hessian** out) {
  return guard(__func__, [&] {
    require(out, "out");
    *out = nullptr;
    if (cols < 1) fail(LOWBIT_ERROR_INVALID_ARGUMENT, "column count " + std::to_string(cols) + " must be positive");
    *out = new lowbit_hessian{HessianAccumulator(cols)};
  });
}

void lowbit_hessian_destroy(lowbit_hessian* h) { delete h; }

lowbit_status lowbit_hessian_add(lowbit_hessian* h, const float* x, size_t x_len, int64_t tokens, int64_t stride) {
  return guard(__func__, [&] {
    require(h, "h");
    const size_t need = matrix_span("x", tokens, h->h.cols(), stride);
    if (tokens == 0) return;
    require(x, "x");
    check_size("x", x_len, need, "floats");
    h->h.add(ConstMatrixView<float>(x, tokens, h->h.cols(), stride));
  });
}

namespace {
lowbit_status add_half(const char* fn, ActivationType type, lowbit_hessian* h, const uint16_t* x, size_t x_len,
                       int64_t tokens, int64_t stride) {
  return guard(fn, [&] {
    require(h, "h");
    const size_t need = matrix_span("x", tokens, h->h.cols(), stride);
    if (tokens == 0) return;
    require(x, "x");
    check_size("x", x_len, need, "values");
    h->h.add(type, x, tokens, stride);
  });
}
}  // namespace

lowbit_status lowbit_hessian_add_f16(lowbit_hessian* h, const uint16_t* x, size_t x_len, int64_t tokens,
                                     int64_t stride) {
  return add_half(__func__, ActivationType::f16, h, x, x_len, tokens, stride);
}

lowbit_status lowbit_hessian_add_bf16(lowbit_hessian* h, const uint16_t* x, size_t x_len, int64_t tokens,
                                      int64_t stride) {
  return add_half(__func__, ActivationType::bf16, h, x, x_len, tokens, stride);
}

lowbit_status lowbit_hessian_merge(lowbit_hessian* h, const lowbit_hessian* other) {
  return guard(__func__, [&] {
    require(h, "h");
    require(other, "other");
    if (h == other) fail(LOWBIT_ERROR_INVALID_ARGUMENT, "cannot merge a Hessian into itself");
    h->h.merge(other->h);
  });
}

lowbit_status lowbit_hessian_cols(const lowbit_hessian* h, int64_t* out_cols) {
  return guard(__func__, [&] { *require(out_cols, "out_cols") = require(h, "h")->h.cols(); });
}

lowbit_status lowbit_hessian_tokens(const lowbit_hessian* h, int64_t* out_tokens) {
  return guard(__func__, [&] { *require(out_tokens, "out_tokens") = require(h, "h")->h.tokens(); });
}

lowbit_status lowbit_hessian_matrix(const lowbit_hessian* h, float* out, size_t out_len) {
  return guard(__func__, [&] {
    require(h, "h");
    require(out, "out");
    const auto n = static_cast<size_t>(h->h.cols());
    check_size("out", out_len, checked_mul(n, n, "cols x cols"), "floats");
    copy_out(out, h->h.matrix());
  });
}

lowbit_status lowbit_hessian_importance(const lowbit_hessian* h, float* out, size_t out_len) {
  return guard(__func__, [&] {
    require(h, "h");
    require(out, "out");
    check_size("out", out_len, static_cast<size_t>(h->h.cols()), "floats");
    copy_out(out, h->h.importance());
  });
}

lowbit_status lowbit_hessian_save(const lowbit_hessian* h, const char* path) {
  return guard(__func__, [&] {
    require(h, "h");
    h->h.save(require(path, "path"));
  });
}

lowbit_status lowbit_hessian_load(const char* path, lowbit_hessian** out) {
  return guard(__func__, [&] {
    require(out, "out");
    *out = nullptr;
    *out = new lowbit_hessian{HessianAccumulator::load(require(path, "path"))};
  });
}

lowbit_status lowbit_gptq_config_init(lowbit_gptq_config* config) {
  return guard(__func__, [&] {
    require(config, "config");
    const GptqConfig d;
    *config = lowbit_gptq_config{};
    config->damp_percent = d.damp_percent;
    config->max_damp_retries = d.max_damp_retries;
    config->damp_step = d.damp_step;
    config->block_size = d.block_size;
    config->act_order = d.act_order ? 1 : 0;
    config->static_groups = d.static_groups ? 1 : 0;
    config->fit_groups_on_updated_weights = d.fit_groups_on_updated_weights ? 1 : 0;
  });
}

lowbit_status lowbit_gptq_quantize_ggml(const lowbit_gptq_config* config, const lowbit_hessian* h,
                                        lowbit_format format, const float* w, size_t w_len, int64_t rows,
                                        int64_t cols, int64_t stride, const float* importance, size_t importance_len,
                                        void* dst, size_t dst_size, lowbit_gptq_report* report) {
  return guard(__func__, [&] {
    const GptqConfig cfg = to_gptq_config(config);
    require(h, "h");
    const Format f = to_format(format);
    const std::vector<float> imp =
        gptq_importance("w", h->h, w, w_len, rows, cols, stride, importance, importance_len);
    const size_t bytes = checked_mul(static_cast<size_t>(rows), row_bytes(f, cols), "rows x row size");
    if (bytes > 0) require(dst, "dst");
    check_size("dst", dst_size, bytes, "bytes");
    GgmlTarget target(f, imp);
    const GptqReport r = gptq_solve(cfg, ConstMatrixView<float>(w, rows, cols, stride), h->h, target);
    const std::vector<std::byte> out = target.result();
    if (out.size() != bytes) throw std::logic_error("GPTQ result size differs from lowbit_quantized_size");
    copy_out(static_cast<std::byte*>(dst), out);
    fill_report(r, report);
  });
}

lowbit_status lowbit_gptq_quantize_gsq(const lowbit_gptq_config* config, const lowbit_hessian* h,
                                       const lowbit_gsq_config* gsq, const float* w, size_t w_len, int64_t rows,
                                       int64_t cols, int64_t stride, const float* importance, size_t importance_len,
                                       const lowbit_gsq_output* out, lowbit_gptq_report* report) {
  return guard(__func__, [&] {
    const GptqConfig cfg = to_gptq_config(config);
    require(h, "h");
    const GsqConfig gcfg = to_config(gsq);
    const std::vector<float> imp =
        gptq_importance("w", h->h, w, w_len, rows, cols, stride, importance, importance_len);
    const lowbit_gsq_sizes s = sizes_for(gcfg, rows, cols);
    check_output(out, s, cfg.act_order && !cfg.static_groups);
    GsqTarget target(gcfg, imp);
    const GptqReport r = gptq_solve(cfg, ConstMatrixView<float>(w, rows, cols, stride), h->h, target);
    write_output(target.result(), s, out);
    fill_report(r, report);
  });
}

}  // extern "C"
