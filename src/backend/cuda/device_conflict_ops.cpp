#include "backend/cuda/device_conflict_ops.hpp"

#include "backend/cuda/library_check.hpp"

namespace cm {

DeviceConflictOps::DeviceConflictOps(const CudaContext& ctx, const double* t, const double* s, int64_t out, int64_t in,
                                     int K, double lambda)
    : DeviceBlockOps(ctx, out), t_(t), s_(s), out_(out), in_(in), K_(K), lambda_(lambda) {}

// Column-major views: T_i (row-major [out, in]) is T_i^T [in, out] at t + i*out*in; S_i is its own transpose.
// U_i = T_i^T v and W_i = (S_k - lambda S_i) U_i for the tasks i < k and i > k, each run a strided batch;
// then gv = sum_i T_i W_i.
void DeviceConflictOps::apply(const double* v, double* gv, int64_t cols) {
  const int in = blas_dim(in_), out = blas_dim(out_), nc = blas_dim(cols);
  const int64_t tstride = out_ * in_, sstride = in_ * in_, ustride = in_ * cols;
  double* u = u_.get(static_cast<size_t>(K_ * ustride));
  double* w = w_.get(static_cast<size_t>(K_ * ustride));
  const double one = 1.0, zero = 0.0, neg_lambda = -lambda_;
  const cublasHandle_t h = ctx_.blas();
  const double* s_k = s_ + k_ * sstride;
  const int ranges[2][2] = {{0, k_}, {k_ + 1, K_}};
  for (const auto& r : ranges) {
    const int first = r[0], count = r[1] - r[0];
    if (count <= 0) continue;
    double* ui = u + first * ustride;
    double* wi = w + first * ustride;
    CUBLAS_CHECK(cublasDgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, in, nc, out, &one, t_ + first * tstride, in,
                                           tstride, v, out, 0, &zero, ui, in, ustride, count));
    CUBLAS_CHECK(cublasDgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, in, nc * count, in, &one, s_k, in, ui, in, &zero, wi, in));
    CUBLAS_CHECK(cublasDgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, in, nc, in, &neg_lambda, s_ + first * sstride,
                                           in, sstride, ui, in, ustride, &one, wi, in, ustride, count));
  }
  bool first = true;
  for (int i = 0; i < K_; ++i) {
    if (i == k_) continue;
    CUBLAS_CHECK(cublasDgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, out, nc, in, &one, t_ + i * tstride, in, w + i * ustride, in,
                             first ? &zero : &one, gv, out));
    first = false;
  }
  if (first) CUDA_CHECK(cudaMemsetAsync(gv, 0, static_cast<size_t>(out_ * cols) * sizeof(double), ctx_.stream()));
}

}  // namespace cm
