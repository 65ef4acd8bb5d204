/* Compiled, not run, by the `package_c_header` test: lowbit.h must be valid C99 and C++
   under -Wall -Wextra -Werror -pedantic, and usable without any other lowbit header. */
#include <lowbit/lowbit.h>
#include <lowbit/lowbit.h> /* the include guard works */

static int uses_every_type(void) {
  lowbit_status s = LOWBIT_OK;
  lowbit_format f = LOWBIT_FORMAT_Q4_K;
  lowbit_format_info fi;
  lowbit_gsq_config gc;
  lowbit_gsq_sizes gs;
  lowbit_gsq_output go;
  lowbit_gsq_matrix gm;
  lowbit_gptq_config pc;
  lowbit_gptq_report pr;
  lowbit_gguf_tensor_info ti;
  lowbit_model_summary ms;
  lowbit_hessian* h = 0;
  lowbit_gguf* g = 0;
  lowbit_gguf_writer* w = 0;
  lowbit_progress_fn progress = 0;
  lowbit_log_fn log = 0;
  lowbit_gguf_type t = LOWBIT_GGUF_STRING;
  lowbit_kernel_family k = LOWBIT_KERNEL_GSQ_GEMV;
  lowbit_log_level l = LOWBIT_LOG_OFF;
  (void)fi; (void)gc; (void)gs; (void)go; (void)gm; (void)pc; (void)pr; (void)ti; (void)ms;
  (void)h; (void)g; (void)w; (void)progress; (void)log; (void)t; (void)k; (void)l;
  return (int)s + (int)f + LOWBIT_ABI_VERSION + LOWBIT_VERSION_MAJOR + LOWBIT_GGUF_MAX_DIMS;
}

int header_check_entry(void);
int header_check_entry(void) { return uses_every_type() + (lowbit_version() != 0); }
