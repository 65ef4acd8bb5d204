/*
 * lowbit's C API: a stable C99 interface to the library for engines in any language
 * and for FFI (ctypes, cffi, Rust, Go, ...). docs/api.md ("The C API") describes it.
 *
 * Conventions
 *   - Every function that can fail returns a lowbit_status; LOWBIT_OK is 0. On failure
 *     lowbit_last_error() gives this thread's message naming what was wrong (the value,
 *     the size, the file). No C++ exception ever crosses this boundary.
 *     The few functions that cannot fail return their value directly: lowbit_version,
 *     lowbit_abi_version, lowbit_last_error, lowbit_status_name, lowbit_format_count,
 *     lowbit_get_num_threads and the *_destroy / *_close functions (which accept NULL).
 *   - Objects are opaque handles made by *_create / *_open / *_load and released by the
 *     matching *_destroy / *_close.
 *   - Every buffer comes with its size: `..._len` counts elements of the pointer's type,
 *     `..._size` counts bytes. Output buffers may be larger than needed, never smaller
 *     (LOWBIT_ERROR_BUFFER_TOO_SMALL names both sizes); size queries tell what is needed.
 *   - Matrices are row-major [rows x cols] (a weight matrix is [out x in]); a stride is
 *     the distance between rows in elements, 0 meaning cols.
 *   - Formats are GGML type ids (lowbit_format), so they go into GGUF files unchanged.
 *   - Strings are NUL-terminated UTF-8. Strings and pointers returned by the library stay
 *     valid for the life of the handle they came from (static ones forever).
 *   - Thread safety: handles are not synchronised; use one handle from one thread at a
 *     time (distinct handles are independent). Stateless calls are thread-safe.
 *
 * ABI: functions are only ever added. A change that breaks existing callers (a struct's
 * layout, a signature) raises LOWBIT_ABI_VERSION, which is the shared library's SONAME
 * version (liblowbit.so.1). lowbit_abi_version() tells a program which one it loaded.
 */
#ifndef LOWBIT_LOWBIT_H
#define LOWBIT_LOWBIT_H

#include <stddef.h>
#include <stdint.h>

#define LOWBIT_VERSION_MAJOR 0
#define LOWBIT_VERSION_MINOR 1
#define LOWBIT_VERSION_PATCH 0
#define LOWBIT_VERSION_STRING "0.1.0"
/* The C ABI's version: the shared library is liblowbit.so.<LOWBIT_ABI_VERSION>. */
#define LOWBIT_ABI_VERSION 1

#ifndef LOWBIT_C_API
#if defined(__GNUC__) || defined(__clang__)
#define LOWBIT_C_API __attribute__((visibility("default")))
#else
#define LOWBIT_C_API
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ status, errors */

typedef enum lowbit_status {
  LOWBIT_OK = 0,
  /* The library refused the input or the operation failed (bad values, a bad or
     unreadable file, a solver that could not proceed): lowbit_last_error() says why. */
  LOWBIT_ERROR = 1,
  /* A null pointer or handle, a negative size, an enum value out of range. */
  LOWBIT_ERROR_INVALID_ARGUMENT = 2,
  /* An output buffer smaller than the result; the message names both sizes. */
  LOWBIT_ERROR_BUFFER_TOO_SMALL = 3,
  /* An unknown format or type name, metadata key, tensor name, or an index out of range. */
  LOWBIT_ERROR_NOT_FOUND = 4,
  /* A metadata value read as another type than it has. */
  LOWBIT_ERROR_TYPE_MISMATCH = 5,
  LOWBIT_ERROR_OUT_OF_MEMORY = 6,
  /* The progress callback asked to stop (lowbit_quantize_model). */
  LOWBIT_ERROR_CANCELLED = 7,
  /* An unexpected failure inside the library (a bug: please report the message). */
  LOWBIT_ERROR_INTERNAL = 8
} lowbit_status;

/* The message of the last failed call on this thread ("" before any failure). Valid
   until the next failing lowbit call on the same thread; successful calls keep it. */
LOWBIT_C_API const char* lowbit_last_error(void);
/* "LOWBIT_OK", "LOWBIT_ERROR_BUFFER_TOO_SMALL", ...; "unknown status" otherwise. */
LOWBIT_C_API const char* lowbit_status_name(lowbit_status status);

/* ------------------------------------------------------------------ version, setup */

/* The library's version, "0.1.0" (LOWBIT_VERSION_STRING of the library actually loaded). */
LOWBIT_C_API const char* lowbit_version(void);
/* The loaded library's LOWBIT_ABI_VERSION; compare with the header's to detect a mismatch. */
LOWBIT_C_API int lowbit_abi_version(void);

/* Caps the worker threads lowbit uses (0: all cores). Results never depend on it. */
LOWBIT_C_API lowbit_status lowbit_set_num_threads(int threads);
LOWBIT_C_API int lowbit_get_num_threads(void);

typedef enum lowbit_log_level {
  LOWBIT_LOG_TRACE = 0,
  LOWBIT_LOG_DEBUG = 1,
  LOWBIT_LOG_INFO = 2,
  LOWBIT_LOG_WARN = 3,
  LOWBIT_LOG_ERROR = 4,
  LOWBIT_LOG_OFF = 5 /* the default: the library is silent */
} lowbit_log_level;

/* Messages at `level` or above are emitted (to stderr unless a callback is set). */
LOWBIT_C_API lowbit_status lowbit_set_log_level(lowbit_log_level level);
/* Receives each emitted message (no time stamp or newline; `message` is NUL-terminated
   and `length` bytes long). Calls are serialised. NULL restores stderr. */
typedef void (*lowbit_log_fn)(lowbit_log_level level, const char* message, size_t length, void* user);
LOWBIT_C_API lowbit_status lowbit_set_log_callback(lowbit_log_fn callback, void* user);

/* ------------------------------------------------------------------ formats */

/* A storage format: its GGML type id. */
typedef uint32_t lowbit_format;
enum {
  LOWBIT_FORMAT_F32 = 0,
  LOWBIT_FORMAT_F16 = 1,
  LOWBIT_FORMAT_Q4_0 = 2,
  LOWBIT_FORMAT_Q4_1 = 3,
  LOWBIT_FORMAT_Q5_0 = 6,
  LOWBIT_FORMAT_Q5_1 = 7,
  LOWBIT_FORMAT_Q8_0 = 8,
  LOWBIT_FORMAT_Q8_1 = 9,
  LOWBIT_FORMAT_Q2_K = 10,
  LOWBIT_FORMAT_Q3_K = 11,
  LOWBIT_FORMAT_Q4_K = 12,
  LOWBIT_FORMAT_Q5_K = 13,
  LOWBIT_FORMAT_Q6_K = 14,
  LOWBIT_FORMAT_Q8_K = 15,
  LOWBIT_FORMAT_IQ4_NL = 20,
  LOWBIT_FORMAT_IQ4_XS = 23,
  LOWBIT_FORMAT_BF16 = 30
};

typedef struct lowbit_format_info {
  lowbit_format format;    /* GGML type id */
  const char* name;        /* GGML's spelling, "Q4_K" (static) */
  int32_t block_size;      /* elements per block (1 for F32/F16/BF16) */
  int32_t block_bytes;     /* bytes per block */
  int32_t quantized;       /* 1 for block formats */
  int32_t activation_only; /* 1 for Q8_1 / Q8_K: made on the fly, not stored in models */
  double bits_per_weight;
} lowbit_format_info;

/* Number of formats; lowbit_format_info_at(0 .. count-1) lists them in display order. */
LOWBIT_C_API size_t lowbit_format_count(void);
LOWBIT_C_API lowbit_status lowbit_format_info_at(size_t index, lowbit_format_info* out);
LOWBIT_C_API lowbit_status lowbit_format_info_by_id(lowbit_format format, lowbit_format_info* out);
/* Case-insensitive ("q4_k" works); LOWBIT_ERROR_NOT_FOUND for an unknown name. */
LOWBIT_C_API lowbit_status lowbit_format_info_by_name(const char* name, lowbit_format_info* out);
/* Bytes of one row of `cols` elements; cols must be a multiple of the block size. */
LOWBIT_C_API lowbit_status lowbit_row_size(lowbit_format format, int64_t cols, size_t* out_bytes);
/* Bytes of a rows x cols matrix (rows back to back: a GGUF tensor's layout). */
LOWBIT_C_API lowbit_status lowbit_quantized_size(lowbit_format format, int64_t rows, int64_t cols,
                                                 size_t* out_bytes);

/* ------------------------------------------------------------------ whole matrices */

/* Quantizes src (rows x cols floats, rows `src_stride` elements apart, src_len elements
   readable) into dst (dst_size bytes, at least lowbit_quantized_size) with the format's
   reference quantizer, in parallel over rows. `importance` is NULL (importance_len 0) or
   holds cols finite non-negative weights, one per input column (llama.cpp's imatrix).
   NaN/Inf in src is refused (the element named). The bytes never depend on the thread
   count or the CPU. Uses the default effort (lowbit_quantize_effort chooses). */
LOWBIT_C_API lowbit_status lowbit_quantize(lowbit_format format, const float* src, size_t src_len, int64_t rows,
                                           int64_t cols, int64_t src_stride, const float* importance,
                                           size_t importance_len, void* dst, size_t dst_size);
/* How hard each block's scale search works (docs/formats.md, "Effort levels"):
   FAST is ggml's own search, DEFAULT lowbit's more accurate one, BEST a wider one. */
typedef enum lowbit_effort {
  LOWBIT_EFFORT_FAST = 0,
  LOWBIT_EFFORT_DEFAULT = 1,
  LOWBIT_EFFORT_BEST = 2
} lowbit_effort;
/* lowbit_quantize at the given effort; an effort outside the enum is
   LOWBIT_ERROR_INVALID_ARGUMENT. */
LOWBIT_C_API lowbit_status lowbit_quantize_effort(lowbit_format format, const float* src, size_t src_len,
                                                  int64_t rows, int64_t cols, int64_t src_stride,
                                                  const float* importance, size_t importance_len, lowbit_effort effort,
                                                  void* dst, size_t dst_size);
/* Decodes a rows x cols matrix of `format` from src (src_size bytes, at least
   lowbit_quantized_size) into dst (rows `dst_stride` elements apart, dst_len elements). */
LOWBIT_C_API lowbit_status lowbit_dequantize(lowbit_format format, const void* src, size_t src_size, int64_t rows,
                                             int64_t cols, float* dst, size_t dst_len, int64_t dst_stride);

/* ------------------------------------------------------------------ row kernels */

/* One row through the best kernel variant for this CPU (the dispatch tables of
   docs/kernels.md). n: elements, a multiple of the block size. These are the raw
   kernels: no NaN/Inf check (lowbit_quantize does that), sizes are checked.
   The C API covers the quantize, dequantize and GSQ GEMV families (docs/api.md
   lists what it leaves to C++). */
LOWBIT_C_API lowbit_status lowbit_quantize_row(lowbit_format format, const float* x, int64_t n,
                                               const float* importance, size_t importance_len, void* y,
                                               size_t y_size);
LOWBIT_C_API lowbit_status lowbit_dequantize_row(lowbit_format format, const void* x, size_t x_size, float* y,
                                                 int64_t n);

typedef enum lowbit_kernel_family {
  LOWBIT_KERNEL_QUANTIZE = 0,
  LOWBIT_KERNEL_DEQUANTIZE = 1,
  LOWBIT_KERNEL_GSQ_GEMV = 2 /* `format` is ignored */
} lowbit_kernel_family;
/* The name of the variant the table selects on this CPU, e.g.
   "dequantize_row_q4_K__avx512" (static string). */
LOWBIT_C_API lowbit_status lowbit_kernel_name(lowbit_kernel_family family, lowbit_format format,
                                              const char** out_name);

/* ------------------------------------------------------------------ GSQ */

typedef enum lowbit_gsq_scheme {
  LOWBIT_GSQ_SYMMETRIC = 0,       /* w = scale * (q - 2^(b-1)) */
  LOWBIT_GSQ_ASYMMETRIC = 1,      /* w = scale * (q - zero), integer zero (GPTQ checkpoints) */
  LOWBIT_GSQ_ASYMMETRIC_FLOAT = 2 /* w = scale * q + min (Q4_1 / Q5_1 math) */
} lowbit_gsq_scheme;

typedef enum lowbit_gsq_search {
  LOWBIT_GSQ_SEARCH_RTN = 0,
  LOWBIT_GSQ_SEARCH_MSE = 1,
  LOWBIT_GSQ_SEARCH_IMPORTANCE = 2, /* needs an importance vector */
  LOWBIT_GSQ_SEARCH_HQQ = 3
} lowbit_gsq_search;

typedef enum lowbit_gsq_scale_storage {
  LOWBIT_GSQ_SCALES_FP16 = 0,
  LOWBIT_GSQ_SCALES_BF16 = 1,
  LOWBIT_GSQ_SCALES_FP32 = 2
} lowbit_gsq_scale_storage;

/* GSQ settings (docs/gsq.md); lowbit_gsq_config_init fills the defaults
   (4 bits, group 128, asymmetric, mse, fp16 scales). */
typedef struct lowbit_gsq_config {
  int32_t bits;          /* 2, 3, 4, 5, 6 or 8 */
  int32_t group_size;    /* 32, 64, 128, 256, or 0 for one group per row */
  int32_t scheme;        /* lowbit_gsq_scheme */
  int32_t search;        /* lowbit_gsq_search */
  int32_t scale_storage; /* lowbit_gsq_scale_storage */
  int32_t double_quant;  /* 1: int8 scale codes with one fp32 scale per 256 groups */
  double mse_norm;
  int32_t mse_grid;
  double mse_max_shrink;
  int32_t hqq_iters;
  double hqq_p, hqq_beta, hqq_kappa;
} lowbit_gsq_config;

LOWBIT_C_API lowbit_status lowbit_gsq_config_init(lowbit_gsq_config* config);

/* What a rows x cols GSQ result needs, in elements of each array (0: array unused). */
typedef struct lowbit_gsq_sizes {
  int64_t groups_per_row, words_per_row;
  size_t qweight_len;      /* uint32: rows x words_per_row */
  size_t scales_len;       /* float: rows x groups_per_row */
  size_t zeros_len;        /* int32: rows x groups_per_row */
  size_t mins_len;         /* float: rows x groups_per_row for ASYMMETRIC_FLOAT, else 0 */
  size_t scale_codes_len;  /* int8: rows x groups_per_row with double_quant, else 0 */
  size_t scale_blocks_len; /* float: ceil(rows x groups_per_row / 256) with double_quant, else 0 */
  size_t g_idx_len;        /* int32: cols (the group of each input column) */
} lowbit_gsq_sizes;

/* Validates the config against the shape and fills `out`. */
LOWBIT_C_API lowbit_status lowbit_gsq_sizes_for(const lowbit_gsq_config* config, int64_t rows, int64_t cols,
                                                lowbit_gsq_sizes* out);

/* Caller buffers a GSQ result is written into. Each array's length must be at least
   what lowbit_gsq_sizes_for reports; an array reported as 0 may be NULL. g_idx is
   optional (NULL) unless the result needs it (GPTQ with act-order and no static
   groups); when given it is filled with each column's group. */
typedef struct lowbit_gsq_output {
  uint32_t* qweight;
  size_t qweight_len;
  float* scales;
  size_t scales_len;
  int32_t* zeros;
  size_t zeros_len;
  float* mins;
  size_t mins_len;
  int8_t* scale_codes;
  size_t scale_codes_len;
  float* scale_blocks;
  size_t scale_blocks_len;
  int32_t* g_idx;
  size_t g_idx_len;
} lowbit_gsq_output;

/* GSQ-quantizes w (rows x cols, stride, w_len elements) and packs it into `out`:
   codes LSB-first along each row (AutoGPTQ's packing), scales/zeros/mins per group.
   `importance` (NULL or cols entries) is needed by the importance search. */
LOWBIT_C_API lowbit_status lowbit_gsq_quantize(const lowbit_gsq_config* config, const float* w, size_t w_len,
                                               int64_t rows, int64_t cols, int64_t stride, const float* importance,
                                               size_t importance_len, const lowbit_gsq_output* out);

/* A packed GSQ matrix held by the caller (e.g. what lowbit_gsq_quantize wrote). */
typedef struct lowbit_gsq_matrix {
  int32_t bits;
  int32_t group_size; /* 0: one group per row */
  int32_t scheme;     /* lowbit_gsq_scheme */
  int64_t rows, cols;
  const uint32_t* qweight;
  size_t qweight_len;
  const float* scales;
  size_t scales_len;
  const int32_t* zeros; /* ignored (may be NULL) for ASYMMETRIC_FLOAT */
  size_t zeros_len;
  const float* mins; /* ASYMMETRIC_FLOAT only */
  size_t mins_len;
  const int32_t* g_idx; /* NULL: column / group_size */
  size_t g_idx_len;
} lowbit_gsq_matrix;

/* Decodes the matrix into out (rows x cols floats, contiguous). */
LOWBIT_C_API lowbit_status lowbit_gsq_dequantize(const lowbit_gsq_matrix* m, float* out, size_t out_len);
/* y = W x on the packed form (the GSQ GEMV kernel family): x has cols entries, y rows. */
LOWBIT_C_API lowbit_status lowbit_gsq_gemv(const lowbit_gsq_matrix* m, const float* x, size_t x_len, float* y,
                                           size_t y_len);

/* ------------------------------------------------------------------ GPTQ */

/* H = (2/N) sum x x^T over a layer's calibration inputs (docs/gptq.md). */
typedef struct lowbit_hessian lowbit_hessian;

/* Refuses (LOWBIT_ERROR) a cols x cols matrix that would not fit in memory. */
LOWBIT_C_API lowbit_status lowbit_hessian_create(int64_t cols, lowbit_hessian** out);
LOWBIT_C_API void lowbit_hessian_destroy(lowbit_hessian* h);
/* Adds activations [tokens x cols] (rows `stride` elements apart, 0: cols; x_len
   elements readable). NaN/Inf is refused and leaves H unchanged. */
LOWBIT_C_API lowbit_status lowbit_hessian_add(lowbit_hessian* h, const float* x, size_t x_len, int64_t tokens,
                                              int64_t stride);
/* The same for raw IEEE fp16 or bfloat16 values. */
LOWBIT_C_API lowbit_status lowbit_hessian_add_f16(lowbit_hessian* h, const uint16_t* x, size_t x_len,
                                                  int64_t tokens, int64_t stride);
LOWBIT_C_API lowbit_status lowbit_hessian_add_bf16(lowbit_hessian* h, const uint16_t* x, size_t x_len,
                                                   int64_t tokens, int64_t stride);
/* Adds the tokens of `other` (same cols) to h. */
LOWBIT_C_API lowbit_status lowbit_hessian_merge(lowbit_hessian* h, const lowbit_hessian* other);
LOWBIT_C_API lowbit_status lowbit_hessian_cols(const lowbit_hessian* h, int64_t* out_cols);
LOWBIT_C_API lowbit_status lowbit_hessian_tokens(const lowbit_hessian* h, int64_t* out_tokens);
/* The full symmetric matrix, cols x cols floats. */
LOWBIT_C_API lowbit_status lowbit_hessian_matrix(const lowbit_hessian* h, float* out, size_t out_len);
/* diag(H) / 2: the mean of x^2 per column (llama.cpp's imatrix), cols floats. */
LOWBIT_C_API lowbit_status lowbit_hessian_importance(const lowbit_hessian* h, float* out, size_t out_len);
/* The "LBHESS01" file format; save writes atomically. */
LOWBIT_C_API lowbit_status lowbit_hessian_save(const lowbit_hessian* h, const char* path);
LOWBIT_C_API lowbit_status lowbit_hessian_load(const char* path, lowbit_hessian** out);

/* GPTQ settings; lowbit_gptq_config_init fills the defaults (damp 0.01, block 128). */
typedef struct lowbit_gptq_config {
  double damp_percent;
  int32_t max_damp_retries;
  double damp_step;
  int32_t block_size;
  int32_t act_order;     /* 1: columns by descending diag(H) */
  int32_t static_groups; /* 1: fit every group up front (needed with act_order for GGML targets) */
  int32_t fit_groups_on_updated_weights;
} lowbit_gptq_config;

LOWBIT_C_API lowbit_status lowbit_gptq_config_init(lowbit_gptq_config* config);

/* What a solve did (optional output). */
typedef struct lowbit_gptq_report {
  double damp_percent_used; /* after any automatic increase */
  int32_t damp_retries;
  int64_t dead_columns; /* columns with zero diagonal: weights set to 0 */
} lowbit_gptq_report;

/* GPTQ of w (rows x cols, stride, w_len elements; cols == the Hessian's) into a GGML
   block format: dst receives rows x row_size bytes (lowbit_quantized_size), loadable by
   any GGML engine. config NULL: defaults. importance NULL: the Hessian's diag(H) / 2
   (as lowbit_quantize_model does); else cols entries. report may be NULL. */
LOWBIT_C_API lowbit_status lowbit_gptq_quantize_ggml(const lowbit_gptq_config* config, const lowbit_hessian* h,
                                                     lowbit_format format, const float* w, size_t w_len,
                                                     int64_t rows, int64_t cols, int64_t stride,
                                                     const float* importance, size_t importance_len, void* dst,
                                                     size_t dst_size, lowbit_gptq_report* report);
/* GPTQ into a GSQ configuration (GPTQ checkpoints' math), written like
   lowbit_gsq_quantize. importance (NULL: diag(H) / 2) is used by the importance search.
   With act_order and no static groups, out->g_idx is required. */
LOWBIT_C_API lowbit_status lowbit_gptq_quantize_gsq(const lowbit_gptq_config* config, const lowbit_hessian* h,
                                                    const lowbit_gsq_config* gsq, const float* w, size_t w_len,
                                                    int64_t rows, int64_t cols, int64_t stride,
                                                    const float* importance, size_t importance_len,
                                                    const lowbit_gsq_output* out, lowbit_gptq_report* report);

/* ------------------------------------------------------------------ GGUF files */

/* GGUF metadata value types (the on-disk ids). */
typedef enum lowbit_gguf_type {
  LOWBIT_GGUF_UINT8 = 0,
  LOWBIT_GGUF_INT8 = 1,
  LOWBIT_GGUF_UINT16 = 2,
  LOWBIT_GGUF_INT16 = 3,
  LOWBIT_GGUF_UINT32 = 4,
  LOWBIT_GGUF_INT32 = 5,
  LOWBIT_GGUF_FLOAT32 = 6,
  LOWBIT_GGUF_BOOL = 7,
  LOWBIT_GGUF_STRING = 8,
  LOWBIT_GGUF_ARRAY = 9,
  LOWBIT_GGUF_UINT64 = 10,
  LOWBIT_GGUF_INT64 = 11,
  LOWBIT_GGUF_FLOAT64 = 12
} lowbit_gguf_type;

#define LOWBIT_GGUF_MAX_DIMS 4

/* A GGUF file, mapped read-only and validated on open. */
typedef struct lowbit_gguf lowbit_gguf;

typedef struct lowbit_gguf_tensor_info {
  const char* name;    /* valid while the file is open */
  lowbit_format type;  /* GGML type id */
  int32_t n_dims;      /* 0..4 */
  int64_t dims[LOWBIT_GGUF_MAX_DIMS]; /* GGUF order: dims[0] = ne0, the row length; unused = 1 */
  uint64_t file_offset; /* absolute position of the first byte */
  size_t size;          /* bytes */
} lowbit_gguf_tensor_info;

/* Errors name the file, the field and its byte offset. */
LOWBIT_C_API lowbit_status lowbit_gguf_open(const char* path, lowbit_gguf** out);
LOWBIT_C_API void lowbit_gguf_close(lowbit_gguf* file);
LOWBIT_C_API lowbit_status lowbit_gguf_version(const lowbit_gguf* file, uint32_t* out_version);

LOWBIT_C_API lowbit_status lowbit_gguf_tensor_count(const lowbit_gguf* file, size_t* out_count);
LOWBIT_C_API lowbit_status lowbit_gguf_get_tensor_info(const lowbit_gguf* file, size_t index,
                                                   lowbit_gguf_tensor_info* out);
/* The index of the tensor called `name`; LOWBIT_ERROR_NOT_FOUND when absent. */
LOWBIT_C_API lowbit_status lowbit_gguf_find_tensor(const lowbit_gguf* file, const char* name, size_t* out_index);
/* The tensor's bytes inside the mapping (no copy), valid while the file is open. */
LOWBIT_C_API lowbit_status lowbit_gguf_tensor_data(const lowbit_gguf* file, size_t index, const void** out_data,
                                                   size_t* out_size);
/* Decodes the tensor (any type) to floats: out_len must be at least its element count. */
LOWBIT_C_API lowbit_status lowbit_gguf_tensor_to_f32(const lowbit_gguf* file, size_t index, float* out,
                                                     size_t out_len);

/* Metadata, in file order. */
LOWBIT_C_API lowbit_status lowbit_gguf_metadata_count(const lowbit_gguf* file, size_t* out_count);
LOWBIT_C_API lowbit_status lowbit_gguf_metadata_key(const lowbit_gguf* file, size_t index, const char** out_key,
                                                    lowbit_gguf_type* out_type);
LOWBIT_C_API lowbit_status lowbit_gguf_find_key(const lowbit_gguf* file, const char* key, size_t* out_index);
/* Any integer type whose value fits int64 (and bool as 0/1). */
LOWBIT_C_API lowbit_status lowbit_gguf_get_int(const lowbit_gguf* file, size_t index, int64_t* out);
/* Any non-negative integer value (uint64 values above INT64_MAX included). */
LOWBIT_C_API lowbit_status lowbit_gguf_get_uint(const lowbit_gguf* file, size_t index, uint64_t* out);
/* float32 or float64. */
LOWBIT_C_API lowbit_status lowbit_gguf_get_float(const lowbit_gguf* file, size_t index, double* out);
LOWBIT_C_API lowbit_status lowbit_gguf_get_bool(const lowbit_gguf* file, size_t index, int* out);
/* The string's bytes (NUL-terminated, `out_len` bytes without the NUL), valid while open. */
LOWBIT_C_API lowbit_status lowbit_gguf_get_string(const lowbit_gguf* file, size_t index, const char** out,
                                                  size_t* out_len);
/* An array value: its element type and item count. */
LOWBIT_C_API lowbit_status lowbit_gguf_get_array_info(const lowbit_gguf* file, size_t index,
                                                      lowbit_gguf_type* out_element_type, size_t* out_count);
/* Item `item` of an array of integers / floats / strings (as the scalar getters). */
LOWBIT_C_API lowbit_status lowbit_gguf_get_array_int(const lowbit_gguf* file, size_t index, size_t item,
                                                     int64_t* out);
LOWBIT_C_API lowbit_status lowbit_gguf_get_array_float(const lowbit_gguf* file, size_t index, size_t item,
                                                       double* out);
LOWBIT_C_API lowbit_status lowbit_gguf_get_array_string(const lowbit_gguf* file, size_t index, size_t item,
                                                        const char** out, size_t* out_len);

/* A GGUF writer: metadata and tensors collected in memory, written atomically
   (temporary file, fsync, rename), so a failure leaves no partial file. */
typedef struct lowbit_gguf_writer lowbit_gguf_writer;

LOWBIT_C_API lowbit_status lowbit_gguf_writer_create(lowbit_gguf_writer** out);
LOWBIT_C_API void lowbit_gguf_writer_destroy(lowbit_gguf_writer* w);
/* Adds or replaces a key (a replaced key keeps its place). set_int takes any integer
   type and refuses a value outside its range; set_float takes FLOAT32 or FLOAT64. */
LOWBIT_C_API lowbit_status lowbit_gguf_writer_set_int(lowbit_gguf_writer* w, const char* key, lowbit_gguf_type type,
                                                      int64_t value);
LOWBIT_C_API lowbit_status lowbit_gguf_writer_set_uint64(lowbit_gguf_writer* w, const char* key, uint64_t value);
LOWBIT_C_API lowbit_status lowbit_gguf_writer_set_float(lowbit_gguf_writer* w, const char* key,
                                                        lowbit_gguf_type type, double value);
LOWBIT_C_API lowbit_status lowbit_gguf_writer_set_bool(lowbit_gguf_writer* w, const char* key, int value);
/* `len` bytes of UTF-8 (may contain no NUL terminator). */
LOWBIT_C_API lowbit_status lowbit_gguf_writer_set_string(lowbit_gguf_writer* w, const char* key, const char* value,
                                                         size_t len);
/* An array of `count` NUL-terminated strings. */
LOWBIT_C_API lowbit_status lowbit_gguf_writer_set_string_array(lowbit_gguf_writer* w, const char* key,
                                                               const char* const* items, size_t count);
/* An array of `count` numbers of `element_type` (an integer, float or bool type) stored
   natively in `data` (data_size bytes, count * the type's size). */
LOWBIT_C_API lowbit_status lowbit_gguf_writer_set_array(lowbit_gguf_writer* w, const char* key,
                                                        lowbit_gguf_type element_type, const void* data,
                                                        size_t data_size, size_t count);
/* Removes a key; LOWBIT_ERROR_NOT_FOUND when absent. */
LOWBIT_C_API lowbit_status lowbit_gguf_writer_remove(lowbit_gguf_writer* w, const char* key);
/* Copies every metadata key of `file`, in file order. */
LOWBIT_C_API lowbit_status lowbit_gguf_writer_copy_metadata(lowbit_gguf_writer* w, const lowbit_gguf* file);
/* Adds a tensor: dims in GGUF order (dims[0] = row length), `size` bytes that must
   match the shape and type. The bytes are copied. */
LOWBIT_C_API lowbit_status lowbit_gguf_writer_add_tensor(lowbit_gguf_writer* w, const char* name, lowbit_format type,
                                                         const int64_t* dims, int32_t n_dims, const void* data,
                                                         size_t size);
/* The same without a copy: the bytes must stay valid until the writer is destroyed. */
LOWBIT_C_API lowbit_status lowbit_gguf_writer_add_tensor_borrowed(lowbit_gguf_writer* w, const char* name,
                                                                  lowbit_format type, const int64_t* dims,
                                                                  int32_t n_dims, const void* data, size_t size);
LOWBIT_C_API lowbit_status lowbit_gguf_writer_write(const lowbit_gguf_writer* w, const char* path);

/* ------------------------------------------------------------------ whole models */

/* Progress of lowbit_quantize_model: elements converted so far out of `total`, on the
   calling thread. Return 0 to go on, non-zero to cancel. */
typedef int (*lowbit_progress_fn)(int64_t done, int64_t total, void* user);

/* What lowbit_quantize_model did (optional output). */
typedef struct lowbit_model_summary {
  int64_t tensors;           /* in the file */
  int64_t converted;         /* tensors whose type changed */
  int64_t fallbacks;         /* tensors whose row length forced another type */
  uint64_t bytes_in, bytes_out; /* tensor data */
  int64_t elements;          /* weights in the model */
} lowbit_model_summary;

/* Quantizes a GGUF model as `lowbit quantize` does (llama-quantize's per-tensor types,
   docs/cli.md): type "Q4_K_M", "Q8_0", ...; imatrix_path NULL or a llama.cpp imatrix
   (GGUF or legacy .dat); method NULL or "rtn", "gsq" or "gptq" (gptq needs hessian_dir:
   "<tensor name>.hess" files from lowbit_hessian_save); threads 0: lowbit's setting.
   `progress` may be NULL. The output is written atomically at the end: on any error, and
   on LOWBIT_ERROR_CANCELLED when the callback returns non-zero, no output file is left
   (an existing file at out_path is untouched). summary may be NULL. */
LOWBIT_C_API lowbit_status lowbit_quantize_model(const char* in_path, const char* out_path, const char* type,
                                                 const char* imatrix_path, const char* method,
                                                 const char* hessian_dir, int threads, lowbit_progress_fn progress,
                                                 void* user, lowbit_model_summary* summary);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* LOWBIT_LOWBIT_H */
