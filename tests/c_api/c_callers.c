/* Calls into the C API from C, where any int may travel in an enum-typed parameter (C++
   cannot pass an out-of-range enum without undefined behaviour, so test_c_api.cpp
   reaches those cases through these). */
#include <lowbit/lowbit.h>

const char* c_status_name(int status);
lowbit_status c_set_log_level(int level);
lowbit_status c_kernel_name(int family, lowbit_format format, const char** out_name);
lowbit_status c_writer_set_int(lowbit_gguf_writer* w, const char* key, int type, int64_t value);

const char* c_status_name(int status) { return lowbit_status_name((lowbit_status)status); }
lowbit_status c_set_log_level(int level) { return lowbit_set_log_level((lowbit_log_level)level); }
lowbit_status c_kernel_name(int family, lowbit_format format, const char** out_name) {
  return lowbit_kernel_name((lowbit_kernel_family)family, format, out_name);
}
lowbit_status c_writer_set_int(lowbit_gguf_writer* w, const char* key, int type, int64_t value) {
  return lowbit_gguf_writer_set_int(w, key, (lowbit_gguf_type)type, value);
}
