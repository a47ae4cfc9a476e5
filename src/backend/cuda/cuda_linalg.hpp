#pragma once
// The Linalg on a GPU (methods/linalg.hpp): cuBLAS and cuSOLVER in float64, the same algorithms and the same
// solver rule as the CPU. Gram matrices by DSYRK (features) and DGEMM + DSYR2K (G_k), dense removal bases by
// DSYEVD, the block solver through DeviceConflictOps, projections and RegMean's product and Cholesky solve by
// DGEMM and DPOTRF/DPOTRS. Each call uploads its host inputs once and reuses device buffers across calls.
#include "backend/cuda/cuda_context.hpp"
#include "methods/conflict_timer.hpp"
#include "methods/linalg.hpp"

namespace cm {

class CudaLinalg : public Linalg {
 public:
  CudaLinalg(const CudaContext& ctx, const LinalgOptions& options) : ctx_(ctx), o_(options) {}
  const char* name() const override { return "cuda"; }
  void add_gram(const float* rows, int64_t n, int64_t dim, double* gram) override;
  std::vector<double> conflict_gram(const ConflictProblem& p, size_t k) override;
  std::vector<Basis> top_eigvecs(const ConflictProblem& p, int c) override;
  void project(const std::vector<Basis>& bases, int64_t out, int64_t in, TaskVectors& tasks) override;
  void dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
             const double* b, double beta, double* c) override;
  bool solve_spd(int64_t n, double* a, int64_t nrhs, double* b) override;

 private:
  void upload_problem(const ConflictProblem& p);
  // G_k into g_ (column-major, lower triangle), from the uploaded problem.
  double* form_gram(const ConflictProblem& p, size_t k);
  Basis dense_basis(const ConflictProblem& p, size_t k, int c);
  // Waits for the GPU when the caller asked for step times, so the time lands on the step that used it.
  void lap(StepTimer& timer, double ConflictTimes::*field, const ConflictProblem& p);

  const CudaContext& ctx_;
  LinalgOptions o_;
  DeviceBuffer<float> f_;
  DeviceBuffer<double> t_, s_, g_, m_, p_, w_, work_, a_, b_, c_;
  DeviceBuffer<int> info_;
};

}  // namespace cm
