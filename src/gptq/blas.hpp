#pragma once
// The few OpenBLAS / LAPACK entry points lowbit uses, declared here so we need no
// particular cblas.h / lapacke.h layout from the distribution.
#include <cstdint>

extern "C" {
enum LowbitCblasOrder { LowbitRowMajor = 101, LowbitColMajor = 102 };
enum LowbitCblasTranspose { LowbitNoTrans = 111, LowbitTrans = 112 };
enum LowbitCblasUplo { LowbitUpper = 121, LowbitLower = 122 };
enum LowbitCblasDiag { LowbitNonUnit = 131, LowbitUnit = 132 };
enum LowbitCblasSide { LowbitLeft = 141, LowbitRight = 142 };

void cblas_sgemm(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a, int lda,
                 const float* b, int ldb, float beta, float* c, int ldc);
void cblas_ssyrk(int order, int uplo, int trans, int n, int k, float alpha, const float* a, int lda, float beta,
                 float* c, int ldc);
void cblas_strsm(int order, int side, int uplo, int trans_a, int diag, int m, int n, float alpha, const float* a,
                 int lda, float* b, int ldb);
void spotrf_(const char* uplo, const int* n, float* a, const int* lda, int* info);
void strtri_(const char* uplo, const char* diag, const int* n, float* a, const int* lda, int* info);
void openblas_set_num_threads(int threads);
int openblas_get_num_threads(void);
}

namespace lowbit::blas {

// Sets OpenBLAS's thread count for the lifetime of the scope, then restores it.
class ThreadScope {
 public:
  explicit ThreadScope(int threads) : saved_(openblas_get_num_threads()) { openblas_set_num_threads(threads); }
  ~ThreadScope() { openblas_set_num_threads(saved_); }
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int saved_;
};

}  // namespace lowbit::blas
