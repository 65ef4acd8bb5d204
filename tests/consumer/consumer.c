/* A C program using lowbit only through its C API, built by the `package_pkgconfig`
   test with nothing but `pkg-config --cflags --libs lowbit` against an installed shared
   library: quantize and decode a matrix, write and read back a GGUF file, and check that
   errors come back as statuses with messages. Exit status 0 when everything holds. */
#include <lowbit/lowbit.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

static int failures = 0;

#define CHECK(cond)                                                                            \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      fprintf(stderr, "consumer.c:%d: check failed: %s (last error: %s)\n", __LINE__, #cond, \
              lowbit_last_error());                                                            \
      ++failures;                                                                              \
    }                                                                                          \
  } while (0)

int main(int argc, char** argv) {
  enum { ROWS = 4, COLS = 64 };
  float w[ROWS * COLS], back[ROWS * COLS];
  unsigned char q[ROWS * 2 * 34];
  size_t size = 0, count = 0, index = 0;
  lowbit_format_info info;
  lowbit_gguf_writer* writer = NULL;
  lowbit_gguf* file = NULL;
  const void* data = NULL;
  const char* text = NULL;
  int64_t value = 0;
  const int64_t dims[2] = {COLS, ROWS};
  double err = 0, ref = 0;
  const char* path = argc > 1 ? argv[1] : "consumer.gguf";
  int i;

  CHECK(lowbit_abi_version() == LOWBIT_ABI_VERSION);
  CHECK(strcmp(lowbit_version(), LOWBIT_VERSION_STRING) == 0);
  CHECK(lowbit_format_info_by_name("q8_0", &info) == LOWBIT_OK);
  CHECK(info.format == LOWBIT_FORMAT_Q8_0 && info.block_size == 32 && info.block_bytes == 34);
  CHECK(lowbit_quantized_size(LOWBIT_FORMAT_Q8_0, ROWS, COLS, &size) == LOWBIT_OK && size == sizeof q);

  for (i = 0; i < ROWS * COLS; ++i) w[i] = (float)sin(0.37 * i) * (1.0f + (float)(i % 7));
  CHECK(lowbit_quantize(LOWBIT_FORMAT_Q8_0, w, ROWS * COLS, ROWS, COLS, 0, NULL, 0, q, sizeof q) == LOWBIT_OK);
  CHECK(lowbit_dequantize(LOWBIT_FORMAT_Q8_0, q, sizeof q, ROWS, COLS, back, ROWS * COLS, 0) == LOWBIT_OK);
  for (i = 0; i < ROWS * COLS; ++i) {
    err += (double)(w[i] - back[i]) * (w[i] - back[i]);
    ref += (double)w[i] * w[i];
  }
  CHECK(sqrt(err / ref) < 0.01);

  /* Errors are statuses with a message. */
  CHECK(lowbit_quantize(LOWBIT_FORMAT_Q8_0, w, ROWS * COLS, ROWS, COLS, 0, NULL, 0, q, 10) ==
        LOWBIT_ERROR_BUFFER_TOO_SMALL);
  CHECK(strstr(lowbit_last_error(), "dst holds 10 bytes") != NULL);
  CHECK(lowbit_format_info_by_name("Q9_9", &info) == LOWBIT_ERROR_NOT_FOUND);

  /* A GGUF file written and read back. */
  CHECK(lowbit_gguf_writer_create(&writer) == LOWBIT_OK);
  CHECK(lowbit_gguf_writer_set_string(writer, "general.name", "consumer", 8) == LOWBIT_OK);
  CHECK(lowbit_gguf_writer_set_int(writer, "consumer.rows", LOWBIT_GGUF_UINT32, ROWS) == LOWBIT_OK);
  CHECK(lowbit_gguf_writer_add_tensor(writer, "w.weight", LOWBIT_FORMAT_Q8_0, dims, 2, q, sizeof q) == LOWBIT_OK);
  CHECK(lowbit_gguf_writer_write(writer, path) == LOWBIT_OK);
  lowbit_gguf_writer_destroy(writer);

  CHECK(lowbit_gguf_open(path, &file) == LOWBIT_OK);
  if (file) {
    CHECK(lowbit_gguf_tensor_count(file, &count) == LOWBIT_OK && count == 1);
    CHECK(lowbit_gguf_find_key(file, "consumer.rows", &index) == LOWBIT_OK);
    CHECK(lowbit_gguf_get_int(file, index, &value) == LOWBIT_OK && value == ROWS);
    CHECK(lowbit_gguf_find_key(file, "general.name", &index) == LOWBIT_OK);
    CHECK(lowbit_gguf_get_string(file, index, &text, &size) == LOWBIT_OK && strcmp(text, "consumer") == 0);
    CHECK(lowbit_gguf_tensor_data(file, 0, &data, &size) == LOWBIT_OK);
    CHECK(size == sizeof q && memcmp(data, q, size) == 0);
    lowbit_gguf_close(file);
  }

  printf("consumer.c: lowbit %s (ABI %d), Q8_0 relative RMSE %.5f, %d failure(s)\n", lowbit_version(),
         lowbit_abi_version(), sqrt(err / ref), failures);
  return failures == 0 ? 0 : 1;
}
