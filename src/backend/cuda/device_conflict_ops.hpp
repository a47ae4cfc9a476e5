#pragma once
// CAT's G_k as a block operator on the GPU, never formed: G_k v = sum_{i != k} T_i (S_k - lambda S_i) T_i^T v
// from the task vectors and Gram matrices already in device memory, the same steps as the CPU's
// HostConflictOps, batched over the tasks.
#include <cstddef>

#include "backend/cuda/device_block_ops.hpp"

namespace cm {

class DeviceConflictOps : public DeviceBlockOps {
 public:
  // t: K row-major [out, in] task vectors, s: K [in, in] Gram matrices, both float64 device memory.
  DeviceConflictOps(const CudaContext& ctx, const double* t, const double* s, int64_t out, int64_t in, int K,
                    double lambda);
  void set_task(int k) { k_ = k; }
  void apply(const double* v, double* gv, int64_t cols) override;

 private:
  const double *t_, *s_;
  int64_t out_, in_;
  int K_, k_ = 0;
  double lambda_;
  DeviceBuffer<double> u_, w_;
};

}  // namespace cm
