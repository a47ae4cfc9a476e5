#include "methods/linalg.hpp"

namespace cm {

BasisSolver choose_basis_solver(int64_t out, int c, const LinalgOptions& options) {
  return out > options.dense_max_out && c <= options.block_max_c ? BasisSolver::Block : BasisSolver::Dense;
}

Basis positive_top_basis(const double* values, const double* vectors, int64_t count, int64_t out, int c) {
  Basis b;
  for (int64_t j = count - 1; j >= 0 && b.cols < c && values[j] > 0; --j, ++b.cols)
    b.rows.insert(b.rows.end(), vectors + j * out, vectors + (j + 1) * out);
  return b;
}

Linalg& cpu_linalg() {
  static const std::unique_ptr<Linalg> cpu = make_cpu_linalg(LinalgOptions{});
  return *cpu;
}

}  // namespace cm
