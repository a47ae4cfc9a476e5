#pragma once
// CAT's G_k as a block operator on the host, never formed:
// G_k v = sum_{i != k} T_i (S_k (T_i^T v) - lambda S_i (T_i^T v)).
#include <cstddef>
#include <vector>

#include "methods/host_block_ops.hpp"
#include "methods/linalg.hpp"

namespace cm {

class HostConflictOps : public HostBlockOps {
 public:
  // t: the task vectors T_i [out, in] widened to float64; both t and p must outlive the ops.
  HostConflictOps(const std::vector<std::vector<double>>& t, const ConflictProblem& p, size_t k);
  void apply(const double* v, double* gv, int64_t cols) override;

 private:
  const std::vector<std::vector<double>>& t_;
  const ConflictProblem& p_;
  size_t k_;
  std::vector<double> u_, w_;
};

}  // namespace cm
