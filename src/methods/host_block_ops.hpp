#pragma once
// BlockOps on host memory (CBLAS, LAPACKE); the operator's apply() is left to the subclass.
#include <vector>

#include "methods/block_eigen.hpp"

namespace cm {

class HostBlockOps : public BlockOps {
 public:
  explicit HostBlockOps(int64_t n) : n_(n) {}
  int64_t dim() const override { return n_; }
  double* scratch(int slot, int64_t count) override;
  void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
            const double* b, int64_t ldb, double beta, double* c, int64_t ldc) override;
  bool eigh(int64_t m, double* a, int64_t lda, double* w) override;
  void scale_columns(double* a, int64_t lda, int64_t rows, int64_t cols, const double* scales) override;
  void copy(const double* src, double* dst, int64_t count) override;
  void upload(const double* host, double* dst, int64_t count) override { copy(host, dst, count); }
  void download(const double* src, double* host, int64_t count) override { copy(src, host, count); }

 private:
  int64_t n_;
  std::vector<std::vector<double>> slots_;
};

}  // namespace cm
