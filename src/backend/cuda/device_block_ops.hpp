#pragma once
// BlockOps in device memory (cuBLAS, cuSOLVER), for the block eigensolver on the GPU; the operator's apply()
// is left to the subclass. Scratch slots are device buffers of the ops.
#include <vector>

#include "backend/cuda/cuda_context.hpp"
#include "methods/block_eigen.hpp"

namespace cm {

class DeviceBlockOps : public BlockOps {
 public:
  DeviceBlockOps(const CudaContext& ctx, int64_t n) : ctx_(ctx), n_(n) {}
  int64_t dim() const override { return n_; }
  double* scratch(int slot, int64_t count) override;
  void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
            const double* b, int64_t ldb, double beta, double* c, int64_t ldc) override;
  bool eigh(int64_t m, double* a, int64_t lda, double* w) override;
  void scale_columns(double* a, int64_t lda, int64_t rows, int64_t cols, const double* scales) override;
  void copy(const double* src, double* dst, int64_t count) override;
  void upload(const double* host, double* dst, int64_t count) override;
  void download(const double* src, double* host, int64_t count) override;

 protected:
  const CudaContext& ctx_;

 private:
  int64_t n_;
  std::vector<DeviceBuffer<double>> slots_;
  DeviceBuffer<double> w_, work_;
  DeviceBuffer<int> info_;
};

}  // namespace cm
