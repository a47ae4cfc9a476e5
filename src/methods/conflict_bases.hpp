#pragma once
// CAT's removal bases (METHODS.md "CAT Merging", linear tensors) from the exemplar rows, without forming the
// feature Gram matrices S_i and, where it is the larger one, without forming G_k:
//   G_k = sum_{i != k} T_i (S_k - lambda S_i) T_i^T = A_k^T A_k - lambda B_k^T B_k = F^T D F,
// with the products of the rows and the task vectors as factors: A_k stacks X_k T_i^T and B_k stacks
// Q_i = X_i T_i^T over i != k (each [n, out]), F = [A_k; B_k] has m = (K - 1) n_k + sum_{i != k} n_i rows and
// D = diag(1, ..., 1, -lambda, ..., -lambda). Per unit, Q_i once per task (one product each); per task k, A_k
// (one product per i), then the cheaper of two exact forms:
//   Formed (m >= out, or cheaper): G_k = A_k^T A_k + lambda Q_k^T Q_k - lambda W, W = sum_i Q_i^T Q_i once
//     per unit; the eigenproblem has order out.
//   Reduced (m < out): G_k's range lies in F's row space. With C = F F^T = L L^T (Cholesky, a 1e-10 relative
//     ridge on the diagonal so that repeated exemplar rows, such as CLIP's class token, do not stop it),
//     U = F^T L^-T is an orthonormal basis of that space and U^T G_k U = L^T D L =: M, of order m. An
//     eigenpair (theta, y) of M is the pair (theta, F^T D L y / theta) of G_k: no triangular solve. C's
//     blocks come from A_k and the per-unit Q Q^T; when the factorisation fails, the task goes Formed. G_k's
//     other out - m eigenvalues are 0, so a basis `any_sign` that M's positive eigenvalues do not fill reaches
//     into them (and then into M's negative ones): such a task goes Formed too.
// Both end in top_positive_eigen (methods/top_eigen.hpp). The products X T^T, G_k and C are float32 GEMMs
// (METHODS.md's float32 arithmetic; their rounding moves the projector by ~1e-6 on ViT-B/32-shaped units,
// docs/BENCHMARKS.md), the factorisations, M and the eigensolves float64. Everything runs on DenseOps, so
// the CPU and the GPU run this one algorithm.
#include <cstdint>
#include <string>
#include <vector>

#include "methods/dense_ops.hpp"
#include "methods/top_eigen.hpp"

namespace cm {

// What the removal bases cost and which ways they went, added up when the caller asks.
struct ConflictStats {
  double products = 0;  // seconds: uploads and the per-unit products Q_i, W, Q Q^T
  double bases = 0;     // seconds: the per-task work (A_k, G_k or C and M, factorisations, eigensolves)
  double project = 0;   // seconds: projecting the task vectors off the bases
  // Seconds of the per-task work by step, summed over the threads that did it (CPU; on a GPU the steps are
  // queued, not timed, and only `bases` is the device's time): A_k; G_k or C and M with the factorisation;
  // the eigensolve and the eigenvectors' way back.
  double task_products = 0, task_forming = 0, task_eigen = 0;
  int64_t formed = 0, reduced = 0;                             // tasks by form
  int64_t direct = 0, shift_invert = 0, negative = 0, fallback = 0;  // eigensolves by path
  int64_t shift_factorisations = 0, shift_applies = 0;  // of the shift-invert solves
  void count(const TopEigen& e);
  void add(const ConflictStats& other);
};

// One task's exemplar rows at a unit's input site: X [n, in] row-major float32 in host memory.
struct FeatureRows {
  const float* data = nullptr;
  int64_t n = 0;
};

// One CAT linear unit: the original task vectors T_i [out, in] and the feature rows of its input site, one of
// each per task, all host memory.
struct ConflictProblem {
  std::string where;  // the unit's tensor name, for errors
  int64_t out = 0, in = 0;
  std::vector<const float*> tasks;  // T_i, row-major [out, in]
  std::vector<FeatureRows> rows;    // X_i
  double lambda = 0;
  // The basis takes the c largest eigenvalues whatever their sign (none only when every one is <= 0: CAT's
  // released variant), not only the positive ones among them.
  bool any_sign = false;
  size_t num_tasks() const { return tasks.size(); }
};

// A removal basis B_k: `cols` orthonormal vectors of length out, stored as rows, largest eigenvalue first.
struct Basis {
  int64_t cols = 0;
  std::vector<double> rows;  // [cols, out]
};

enum class ConflictForm { Formed, Reduced };

struct ConflictOptions {
  TopEigenOptions eigen;
  // Tests pin a form; by default each task takes the cheaper one (conflict_task_flops).
  enum class Pin { Cheaper, Formed, Reduced } pin = Pin::Cheaper;
};

// The flop model of the solve, for the choice of form and for the shard plan (plan/shard_plan.hpp):
// eigensolve of order n taking c pairs; one task's work in form `form`; the whole unit.
double eigen_flops(int64_t n, int c, const TopEigenOptions& options);
double conflict_task_flops(ConflictForm form, int64_t out, int64_t in, const std::vector<int64_t>& rows, size_t k,
                           int c, const TopEigenOptions& options);
double conflict_unit_flops(int64_t out, int64_t in, const std::vector<int64_t>& rows, int c,
                           const TopEigenOptions& options);

class ConflictBases {
 public:
  // Brings the unit into ops's memory and computes what every task shares. The problem must outlive this.
  ConflictBases(DenseOps& ops, const ConflictProblem& p, const ConflictOptions& options, ConflictStats* stats);
  // B_k from at most c eigenvectors; `ops` does the task's work in its own slots: the constructor's ops, or
  // on the CPU another HostDenseOps (a worker thread's), since host memory is shared. Throws cm::Error naming
  // the unit when an eigensolver fails.
  Basis basis(DenseOps& ops, size_t k, int c, ConflictStats* stats) const;
  ConflictForm form(size_t k) const { return forms_[k]; }
  // Bytes of scratch one call of basis(k) holds (its products, G_k or C and M, the eigensolver's copies), so a
  // caller can keep the tasks it runs at once within a memory bound.
  int64_t task_bytes(size_t k) const;

 private:
  Basis formed(DenseOps& ops, size_t k, int c, const float* at, ConflictStats* stats) const;
  bool reduced(DenseOps& ops, size_t k, int c, const float* at, ConflictStats* stats, Basis* basis) const;
  Basis download(DenseOps& ops, const TopEigen& e, int64_t n, const double* vectors, size_t k) const;

  const ConflictProblem& p_;
  ConflictOptions o_;
  std::vector<ConflictForm> forms_;
  std::vector<const float*> t_, x_;  // T_i, X_i in the ops' memory
  std::vector<int64_t> offset_;      // first row of task i's exemplars among all rows; offset_[K] = all rows
  const float* qt_ = nullptr;        // Q^T = [Q_1^T ... Q_K^T], out x all rows (column-major)
  const double* w_ = nullptr;        // W = sum_i Q_i^T Q_i, out x out lower (Formed tasks)
  const double* cq_ = nullptr;       // Q Q^T, all rows x all rows lower (Reduced tasks)
  const double* qt64_ = nullptr;     // Q^T in float64 (Reduced tasks' eigenvectors)
};

// CAT's projections (METHODS.md) of task i: T_i <- (I - B_k B_k^T) T_i for every k != i in ascending k. The
// product of those projections is I - U L^-1 U^T with U = [B_k]_{k != i} (out x r) and L the unit lower
// triangle of U^T U (the blocks B_j^T B_l, l < j; within a block B^T B = I), so T_i takes two products with
// r = sum of the other bases' columns, in float32 as the tensor is (U and C computed in float64). task: T_i [out * in],
// host memory, overwritten. Tasks are independent: any thread may project one, with its own ops.
void project_off_bases(DenseOps& ops, const std::vector<Basis>& bases, int64_t out, int64_t in,
                       std::vector<float>& task, size_t i);

}  // namespace cm
