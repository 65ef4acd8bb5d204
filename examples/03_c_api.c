/* Example 3: lowbit from C (or any language with a C FFI) through <lowbit/lowbit.h>.
 *
 *   03_c_api [WORK_DIR]
 *
 * 1. quantizes a weight matrix to Q4_K and decodes it,
 * 2. writes a tiny llama-shaped model with the GGUF writer and reads it back (metadata,
 *    tensor table, a tensor's bytes straight from the mapped file),
 * 3. quantizes that model to Q4_K_M with a progress callback, then shows that a callback
 *    returning non-zero cancels the run and leaves no output file.
 *
 * Every call returns a lowbit_status; lowbit_last_error() says what went wrong. Files go
 * to WORK_DIR (default: the current folder). Build against an installed lowbit with
 *   cc -std=c99 03_c_api.c $(pkg-config --cflags --libs lowbit) -lm
 */
#include <lowbit/lowbit.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Stops the example with lowbit's message when a call fails. */
#define TRY(call)                                                                                   \
  do {                                                                                              \
    lowbit_status status_ = (call);                                                                 \
    if (status_ != LOWBIT_OK) {                                                                     \
      fprintf(stderr, "%s failed: %s: %s\n", #call, lowbit_status_name(status_), lowbit_last_error()); \
      exit(1);                                                                                      \
    }                                                                                               \
  } while (0)

enum { EMBD = 256, FFN = 512, LAYERS = 2, VOCAB = 32 };

/* Deterministic weights with a few large values, like a trained layer's. */
static void fill_weights(float* w, size_t n, unsigned seed) {
  size_t i;
  unsigned s = seed * 2654435761u + 1u;
  for (i = 0; i < n; ++i) {
    s = s * 1664525u + 1013904223u;
    w[i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * 0.04f;
    if (s % 97 == 0) w[i] *= 20.0f;
  }
}

static void add_f32(lowbit_gguf_writer* w, const char* name, int64_t cols, int64_t rows, unsigned seed) {
  const int64_t dims[2] = {cols, rows}; /* GGUF order: the row length first */
  const size_t n = (size_t)(cols * rows);
  float* data = malloc(n * sizeof(float));
  if (!data) exit(1);
  fill_weights(data, n, seed);
  if (rows == 1) { /* norms: 1-D, all ones */
    size_t i;
    for (i = 0; i < n; ++i) data[i] = 1.0f;
  }
  TRY(lowbit_gguf_writer_add_tensor(w, name, LOWBIT_FORMAT_F32, dims, rows == 1 ? 1 : 2, data, n * sizeof(float)));
  free(data); /* add_tensor copied the bytes */
}

static void write_model(const char* path) {
  lowbit_gguf_writer* w = NULL;
  const char* tokens[VOCAB];
  char name[64];
  int l, i;
  unsigned seed = 1;
  for (i = 0; i < VOCAB; ++i) tokens[i] = "tok";
  TRY(lowbit_gguf_writer_create(&w));
  TRY(lowbit_gguf_writer_set_string(w, "general.architecture", "llama", 5));
  TRY(lowbit_gguf_writer_set_string(w, "general.name", "lowbit example 03", strlen("lowbit example 03")));
  TRY(lowbit_gguf_writer_set_int(w, "llama.block_count", LOWBIT_GGUF_UINT32, LAYERS));
  TRY(lowbit_gguf_writer_set_int(w, "llama.embedding_length", LOWBIT_GGUF_UINT32, EMBD));
  TRY(lowbit_gguf_writer_set_int(w, "llama.feed_forward_length", LOWBIT_GGUF_UINT32, FFN));
  TRY(lowbit_gguf_writer_set_int(w, "llama.attention.head_count", LOWBIT_GGUF_UINT32, 4));
  TRY(lowbit_gguf_writer_set_float(w, "llama.attention.layer_norm_rms_epsilon", LOWBIT_GGUF_FLOAT32, 1e-5));
  TRY(lowbit_gguf_writer_set_string_array(w, "tokenizer.ggml.tokens", tokens, VOCAB));
  add_f32(w, "token_embd.weight", EMBD, VOCAB, seed++);
  for (l = 0; l < LAYERS; ++l) {
    static const char* const square[] = {"attn_q", "attn_k", "attn_v", "attn_output"};
    for (i = 0; i < 4; ++i) {
      sprintf(name, "blk.%d.%s.weight", l, square[i]);
      add_f32(w, name, EMBD, EMBD, seed++);
    }
    sprintf(name, "blk.%d.ffn_gate.weight", l);
    add_f32(w, name, EMBD, FFN, seed++);
    sprintf(name, "blk.%d.ffn_up.weight", l);
    add_f32(w, name, EMBD, FFN, seed++);
    sprintf(name, "blk.%d.ffn_down.weight", l);
    add_f32(w, name, FFN, EMBD, seed++);
    sprintf(name, "blk.%d.attn_norm.weight", l);
    add_f32(w, name, EMBD, 1, 0);
  }
  add_f32(w, "output.weight", EMBD, VOCAB, seed++);
  TRY(lowbit_gguf_writer_write(w, path)); /* atomic: temporary file, fsync, rename */
  lowbit_gguf_writer_destroy(w);
}

static void quantize_a_matrix(void) {
  enum { ROWS = 64, COLS = 1024 };
  static float w[ROWS * COLS], back[ROWS * COLS];
  lowbit_format_info info;
  size_t bytes = 0, i;
  unsigned char* q;
  double err = 0, ref = 0;
  fill_weights(w, ROWS * COLS, 42);
  TRY(lowbit_format_info_by_name("Q4_K", &info));
  TRY(lowbit_quantized_size(info.format, ROWS, COLS, &bytes));
  q = malloc(bytes);
  if (!q) exit(1);
  TRY(lowbit_quantize(info.format, w, ROWS * COLS, ROWS, COLS, 0, NULL, 0, q, bytes));
  TRY(lowbit_dequantize(info.format, q, bytes, ROWS, COLS, back, ROWS * COLS, 0));
  for (i = 0; i < ROWS * COLS; ++i) {
    err += (double)(w[i] - back[i]) * (w[i] - back[i]);
    ref += (double)w[i] * w[i];
  }
  printf("1. %s: %d x %d floats -> %zu bytes (%.3f bits/weight), relative RMSE %.4f\n", info.name, ROWS, COLS, bytes,
         info.bits_per_weight, sqrt(err / ref));
  /* A bad argument is a status and a message, never a crash. */
  if (lowbit_quantize(info.format, w, ROWS * COLS, ROWS, 1000, 0, NULL, 0, q, bytes) == LOWBIT_ERROR)
    printf("   a row of 1000 elements is refused: %s\n", lowbit_last_error());
  free(q);
}

static void read_model(const char* path) {
  lowbit_gguf* f = NULL;
  size_t n = 0, i, index = 0, len = 0;
  const char* text = NULL;
  const void* data = NULL;
  lowbit_gguf_tensor_info t;
  int64_t layers = 0;
  TRY(lowbit_gguf_open(path, &f));
  TRY(lowbit_gguf_find_key(f, "general.name", &index));
  TRY(lowbit_gguf_get_string(f, index, &text, &len));
  TRY(lowbit_gguf_find_key(f, "llama.block_count", &index));
  TRY(lowbit_gguf_get_int(f, index, &layers));
  TRY(lowbit_gguf_tensor_count(f, &n));
  printf("2. %s: '%s', %lld layers, %zu tensors\n", path, text, (long long)layers, n);
  for (i = 0; i < n && i < 4; ++i) {
    lowbit_format_info info;
    TRY(lowbit_gguf_get_tensor_info(f, i, &t));
    TRY(lowbit_format_info_by_id(t.type, &info));
    printf("   %-26s %-5s [%lld x %lld] %zu bytes at offset %llu\n", t.name, info.name, (long long)t.dims[1],
           (long long)t.dims[0], t.size, (unsigned long long)t.file_offset);
  }
  TRY(lowbit_gguf_find_tensor(f, "blk.0.attn_q.weight", &index));
  TRY(lowbit_gguf_tensor_data(f, index, &data, &len)); /* a pointer into the mapping */
  printf("   blk.0.attn_q.weight[0] = %g (read in place, %zu bytes)\n", ((const float*)data)[0], len);
  lowbit_gguf_close(f);
}

struct progress_state {
  int calls;
  int cancel_at; /* 0: never */
};

static int on_progress(int64_t done, int64_t total, void* user) {
  struct progress_state* s = user;
  ++s->calls;
  if (s->cancel_at == 0) {
    printf("\r   quantizing %3.0f%%", 100.0 * (double)done / (double)total);
    if (done == total) printf("\n");
    fflush(stdout);
  }
  return s->cancel_at != 0 && s->calls >= s->cancel_at; /* non-zero: cancel */
}

static void quantize_model(const char* in, const char* out, const char* cancelled) {
  struct progress_state p = {0, 0};
  lowbit_model_summary s;
  lowbit_status status;
  FILE* left;
  TRY(lowbit_quantize_model(in, out, "Q4_K_M", NULL, "rtn", NULL, 0, on_progress, &p, &s));
  printf("3. %s -> %s: %lld of %lld tensors converted, %llu -> %llu bytes\n", in, out, (long long)s.converted,
         (long long)s.tensors, (unsigned long long)s.bytes_in, (unsigned long long)s.bytes_out);

  p.calls = 0;
  p.cancel_at = 2;
  status = lowbit_quantize_model(in, cancelled, "Q4_K_M", NULL, NULL, NULL, 0, on_progress, &p, NULL);
  left = fopen(cancelled, "rb");
  printf("   cancelled after %d progress calls: %s (%s), output file %s\n", p.calls, lowbit_status_name(status),
         lowbit_last_error(), left ? "LEFT BEHIND" : "not written");
  if (left) fclose(left);
  if (status != LOWBIT_ERROR_CANCELLED || left) exit(1);
}

int main(int argc, char** argv) {
  char model[1024], quantized[1024], cancelled[1024];
  const char* dir = argc > 1 ? argv[1] : ".";
  printf("lowbit %s (C ABI %d; header %d)\n", lowbit_version(), lowbit_abi_version(), LOWBIT_ABI_VERSION);
  if (lowbit_abi_version() != LOWBIT_ABI_VERSION) return 1;
  snprintf(model, sizeof model, "%s/example03-f32.gguf", dir);
  snprintf(quantized, sizeof quantized, "%s/example03-Q4_K_M.gguf", dir);
  snprintf(cancelled, sizeof cancelled, "%s/example03-cancelled.gguf", dir);

  quantize_a_matrix();
  write_model(model);
  read_model(model);
  quantize_model(model, quantized, cancelled);
  remove(model);
  remove(quantized);
  return 0;
}
