#pragma once
// DenseOps in host memory: CBLAS and LAPACKE (OpenBLAS). Calls run on the BLAS threads of the process, or on
// the calling thread alone under OneBlasThread.
#include <vector>

#include "methods/dense_ops.hpp"

namespace cm {

class HostDenseOps : public DenseOps {
 public:
  float* floats(int slot, int64_t count) override;
  double* doubles(int slot, int64_t count) override;
  const float* input(const float* host, int64_t) override { return host; }
  void clear_inputs() override {}
  float* output(float* host, int64_t) override { return host; }
  void finish_output(const float*, float*, int64_t) override {}
  void upload(const double* host, double* dst, int64_t count) override { copy(host, dst, count); }
  void download(const double* src, double* host, int64_t count) override { copy(src, host, count); }
  void copy(const double* src, double* dst, int64_t count) override;
  void copy_block(const double* src, int64_t lds, double* dst, int64_t ldd, int64_t rows, int64_t cols) override;
  void widen(const float* src, int64_t lds, double* dst, int64_t ldd, int64_t rows, int64_t cols) override;
  void narrow(const double* src, int64_t lds, float* dst, int64_t ldd, int64_t rows, int64_t cols) override;
  void fill_zero(double* dst, int64_t count) override;
  void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
             const float* b, int64_t ldb, float beta, float* c, int64_t ldc) override;
  void dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
             const double* b, int64_t ldb, double beta, double* c, int64_t ldc) override;
  void ssyrk(bool trans, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, float beta, float* c,
             int64_t ldc) override;
  void dsyrk(bool trans, int64_t n, int64_t k, double alpha, const double* a, int64_t lda, double beta, double* c,
             int64_t ldc) override;
  void lower_gram(int64_t n, double alpha, const double* l, int64_t ldl, double* c, int64_t ldc) override;
  void trmm_lower_trans(int64_t m, int64_t n, double alpha, const double* l, int64_t ldl, double* b,
                        int64_t ldb) override;
  void symm(int64_t n, int64_t cols, const double* a, int64_t lda, const double* b, int64_t ldb, double* c,
            int64_t ldc) override;
  void ssymm(int64_t n, int64_t cols, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
             int64_t ldc) override;
  void axpy(int64_t count, double alpha, const double* x, double* y) override;
  void scale_columns(double* a, int64_t lda, int64_t rows, int64_t cols, const double* scales) override;
  void column_norms(const double* a, int64_t lda, int64_t rows, int64_t cols, double* norms) override;
  void shift_negate(double* a, int64_t lda, int64_t n, double sigma) override;
  void scale_diagonal(double* a, int64_t lda, int64_t n, double factor) override;
  void zero_upper(double* a, int64_t lda, int64_t n) override;
  bool potrf(int64_t n, double* a, int64_t lda) override;
  void potrs(int64_t n, int64_t nrhs, const double* l, int64_t lda, double* b, int64_t ldb) override;
  bool eigh(int64_t m, double* a, int64_t lda, double* w) override;
  bool top_eigh(int64_t n, double* a, int64_t lda, int64_t count, double* w, double* v, int64_t ldv) override;

  // Bytes the slots hold, and giving them all back.
  int64_t slot_bytes() const;
  void release_slots();

 private:
  std::vector<std::vector<float>> floats_;
  std::vector<std::vector<double>> doubles_;
};

// Runs its scope on one OpenBLAS thread and restores the previous count. The count is the process's, so
// while one is alive every BLAS call of the process runs on its caller's thread: concurrent calls from
// several threads then each run alone, side by side.
class OneBlasThread {
 public:
  OneBlasThread();
  ~OneBlasThread();
  OneBlasThread(const OneBlasThread&) = delete;
  OneBlasThread& operator=(const OneBlasThread&) = delete;

 private:
  int before_;
};

}  // namespace cm
