#pragma once
// DenseOps in device memory (methods/dense_ops.hpp): cuBLAS and cuSOLVER on the context's stream, plus the
// element kernels of kernels/linalg_aux.cu. Scratch slots and inputs are device buffers the ops keep, grown
// on demand; results that DenseOps returns in host memory are downloaded (the stream is synchronised there).
#include <vector>

#include "backend/cuda/cuda_context.hpp"
#include "methods/dense_ops.hpp"

namespace cm {

class DeviceDenseOps : public DenseOps {
 public:
  explicit DeviceDenseOps(const CudaContext& ctx) : ctx_(ctx) {}
  float* floats(int slot, int64_t count) override;
  double* doubles(int slot, int64_t count) override;
  const float* input(const float* host, int64_t count) override;
  void clear_inputs() override { inputs_used_ = 0; }
  float* output(float* host, int64_t count) override;
  void finish_output(const float* data, float* host, int64_t count) override;
  void upload(const double* host, double* dst, int64_t count) override;
  void download(const double* src, double* host, int64_t count) override;
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

 private:
  int info() const;  // the solver's status word, downloaded

  const CudaContext& ctx_;
  std::vector<DeviceBuffer<float>> floats_;
  std::vector<DeviceBuffer<double>> doubles_;
  std::vector<DeviceBuffer<float>> inputs_;
  size_t inputs_used_ = 0;
  DeviceBuffer<double> scales_, values_, work_, triangle_;
  DeviceBuffer<float> output_;
  DeviceBuffer<int> info_;
};

}  // namespace cm
