#include "methods/host_conflict_ops.hpp"

#include <algorithm>

namespace cm {

HostConflictOps::HostConflictOps(const std::vector<std::vector<double>>& t, const ConflictProblem& p, size_t k)
    : HostBlockOps(p.out), t_(t), p_(p), k_(k) {}

// Column-major views of the row-major buffers: T_i [out, in] is T_i^T [in, out]; S_i is its own transpose.
void HostConflictOps::apply(const double* v, double* gv, int64_t cols) {
  const int64_t out = p_.out, in = p_.in;
  u_.resize(static_cast<size_t>(in * cols));
  w_.resize(static_cast<size_t>(in * cols));
  bool first = true;
  for (size_t i = 0; i < t_.size(); ++i) {
    if (i == k_) continue;
    gemm(false, false, in, cols, out, 1.0, t_[i].data(), in, v, out, 0.0, u_.data(), in);        // U = T_i^T v
    gemm(false, false, in, cols, in, 1.0, p_.grams[k_], in, u_.data(), in, 0.0, w_.data(), in);  // S_k U
    gemm(false, false, in, cols, in, -p_.lambda, p_.grams[i], in, u_.data(), in, 1.0, w_.data(), in);
    gemm(true, false, out, cols, in, 1.0, t_[i].data(), in, w_.data(), in, first ? 0.0 : 1.0, gv, out);  // T_i W
    first = false;
  }
  if (first) std::fill(gv, gv + out * cols, 0.0);
}

}  // namespace cm
