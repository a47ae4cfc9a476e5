#pragma once
// The Linalg on a GPU (methods/linalg.hpp): CAT's removal bases and projections run the algorithms of
// methods/conflict_bases.hpp on DeviceDenseOps (cuBLAS, cuSOLVER), the tasks one after another on the
// context's stream; RegMean's product and Cholesky solve are DGEMM and DPOTRF/DPOTRS. Device buffers are kept
// across calls.
#include "backend/cuda/cuda_context.hpp"
#include "backend/cuda/device_dense_ops.hpp"
#include "methods/linalg.hpp"

namespace cm {

class CudaLinalg : public Linalg {
 public:
  CudaLinalg(const CudaContext& ctx, const LinalgOptions& options) : ctx_(ctx), o_(options), ops_(ctx) {}
  const char* name() const override { return "cuda"; }
  std::vector<Basis> top_eigvecs(const ConflictProblem& p, int c, ConflictStats* stats) override;
  void project(const std::vector<Basis>& bases, int64_t out, int64_t in, TaskVectors& tasks) override;
  void dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
             const double* b, double beta, double* c) override;
  bool solve_spd(int64_t n, double* a, int64_t nrhs, double* b) override;

 private:
  const CudaContext& ctx_;
  LinalgOptions o_;
  DeviceDenseOps ops_;
  DeviceBuffer<double> a_, b_, c_, work_;
  DeviceBuffer<int> info_;
};

}  // namespace cm
