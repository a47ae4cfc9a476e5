#include "methods/conflict_bases.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "common/error.hpp"
#include "methods/conflict_timer.hpp"

namespace cm {
namespace {

// Slots (dense_ops.hpp: conflict_bases owns 32-63). Per unit, shared by every task:
enum SharedSlot { kQt = 32, kW32, kCq32, kW64 = 32, kCq64, kQt64 };
// Per task, in the task's ops:
enum TaskSlot { kAt = 40, kG32, kCaa, kCba, kG64 = 40, kC, kM, kZ, kV, kAt64 };
// Of the projections:
enum ProjectSlot { kCoef = 48 };

// The ridge of the reduced form's Cholesky factorisation, relative to each diagonal entry of C = F F^T: far
// below the float32 rounding of C (~1e-7 relative), it changes nothing the eigenvectors can resolve, and it
// makes an exactly repeated row of F (the same exemplar token twice) factorisable.
constexpr double kRidge = 1e-10;

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The sizes of task k's problem: A_k's rows, B_k's rows, all rows.
struct TaskSizes {
  int64_t a = 0, b = 0, all = 0;
};

TaskSizes sizes_of(const std::vector<int64_t>& rows, size_t k) {
  TaskSizes s;
  for (size_t i = 0; i < rows.size(); ++i) s.all += rows[i];
  s.a = static_cast<int64_t>(rows.size() - 1) * rows[k];
  s.b = s.all - rows[k];
  return s;
}

double cube(double n) { return n * n * n; }

// The lower triangle of the n x n op(a) op(a)^T as a float32 product (slot32), widened to float64 (slot64).
double* gram_widened(DenseOps& ops, bool trans, int64_t n, int64_t k, const float* a, int64_t lda, int slot32,
                     int slot64) {
  float* g32 = ops.floats(slot32, n * n);
  ops.ssyrk(trans, n, k, 1.0f, a, lda, 0.0f, g32, n);
  double* g = ops.doubles(slot64, n * n);
  ops.widen(g32, n, g, n, n, n);
  return g;
}

}  // namespace

void ConflictStats::count(const TopEigen& e) {
  shift_factorisations += e.factorisations;
  shift_applies += e.applies;
  switch (e.path) {
    case EigenPath::Direct: ++direct; break;
    case EigenPath::ShiftInvert: ++shift_invert; break;
    case EigenPath::Negative: ++negative; break;
    case EigenPath::Fallback: ++fallback; break;
  }
}

void ConflictStats::add(const ConflictStats& o) {
  products += o.products;
  bases += o.bases;
  project += o.project;
  task_products += o.task_products;
  task_forming += o.task_forming;
  task_eigen += o.task_eigen;
  formed += o.formed;
  reduced += o.reduced;
  direct += o.direct;
  shift_invert += o.shift_invert;
  negative += o.negative;
  fallback += o.fallback;
  shift_factorisations += o.shift_factorisations;
  shift_applies += o.shift_applies;
}

// The direct solve's tridiagonal reduction runs at matrix-vector speed: ~8 times its 4/3 n^3 flops in
// matrix-product terms. Shift-invert: the Cholesky factorisation, the probe's matrix-vector products, and
// some 20 blocks of triangular solves (what CAT's spectra took on ViT-B/32-shaped units).
double eigen_flops(int64_t n, int c, const TopEigenOptions& o) {
  const double nn = static_cast<double>(n);
  if (n <= o.dense_max) return 8.0 * 4.0 / 3.0 * cube(nn);
  const double block = static_cast<double>(c + o.block.extra);
  return cube(nn) / 3.0 + 2.0 * o.probe_steps * nn * nn * 8.0 + 20.0 * block * 4.0 * nn * nn;
}

double conflict_task_flops(ConflictForm form, int64_t out, int64_t in, const std::vector<int64_t>& rows, size_t k,
                           int c, const TopEigenOptions& o) {
  const TaskSizes s = sizes_of(rows, k);
  const double o2 = static_cast<double>(out), a = static_cast<double>(s.a), b = static_cast<double>(s.b);
  const double products = 2.0 * a * static_cast<double>(in) * o2;  // A_k
  if (form == ConflictForm::Formed)
    return products + (a + static_cast<double>(rows[k])) * o2 * o2 + eigen_flops(out, c, o);
  const double m = a + b;
  return products + a * a * o2 + 2.0 * b * a * o2 + cube(m) / 3.0 + cube(a) / 3.0 + a * a * b + b * b * a +
         cube(b) / 3.0 + eigen_flops(s.a + s.b, c, o) + 2.0 * o2 * m * c;
}

double conflict_unit_flops(int64_t out, int64_t in, const std::vector<int64_t>& rows, int c,
                           const TopEigenOptions& o) {
  double all = 0;
  for (int64_t n : rows) all += static_cast<double>(n);
  const double o2 = static_cast<double>(out);
  double total = 2.0 * all * static_cast<double>(in) * o2;  // the Q_i
  bool w = false, cq = false;
  for (size_t k = 0; k < rows.size(); ++k) {
    const double formed = conflict_task_flops(ConflictForm::Formed, out, in, rows, k, c, o);
    const double reduced = conflict_task_flops(ConflictForm::Reduced, out, in, rows, k, c, o);
    total += std::min(formed, reduced);
    (formed <= reduced ? w : cq) = true;
  }
  return total + (w ? all * o2 * o2 : 0.0) + (cq ? all * all * o2 : 0.0);
}

ConflictBases::ConflictBases(DenseOps& ops, const ConflictProblem& p, const ConflictOptions& o, ConflictStats* stats)
    : p_(p), o_(o) {
  const auto start = Clock::now();
  const size_t K = p.num_tasks();
  CM_ASSERT(p.rows.size() == K && K >= 1);
  std::vector<int64_t> rows(K);
  offset_.assign(K + 1, 0);
  for (size_t i = 0; i < K; ++i) {
    rows[i] = p.rows[i].n;
    offset_[i + 1] = offset_[i] + rows[i];
  }
  bool need_w = false, need_cq = false;
  for (size_t k = 0; k < K; ++k) {
    ConflictForm f = ConflictForm::Formed;
    if (o.pin == ConflictOptions::Pin::Reduced) {
      f = ConflictForm::Reduced;
    } else if (o.pin == ConflictOptions::Pin::Cheaper) {
      const double formed = conflict_task_flops(ConflictForm::Formed, p.out, p.in, rows, k, 1, o.eigen);
      const double reduced = conflict_task_flops(ConflictForm::Reduced, p.out, p.in, rows, k, 1, o.eigen);
      if (reduced < formed) f = ConflictForm::Reduced;
    }
    forms_.push_back(f);
    (f == ConflictForm::Formed ? need_w : need_cq) = true;
  }

  ops.clear_inputs();
  for (size_t i = 0; i < K; ++i) {
    t_.push_back(ops.input(p.tasks[i], p.out * p.in));
    x_.push_back(ops.input(p.rows[i].data, rows[i] * p.in));
  }
  // Column-major views of the row-major host arrays: T_i is T_i^T [in, out], X_i is X_i^T [in, n_i].
  const int64_t out = p.out, all = offset_[K];
  float* qt = ops.floats(kQt, out * all);
  for (size_t i = 0; i < K; ++i)
    ops.sgemm(true, false, out, rows[i], p.in, 1.0f, t_[i], p.in, x_[i], p.in, 0.0f, qt + offset_[i] * out, out);
  qt_ = qt;
  if (need_w) w_ = gram_widened(ops, false, out, all, qt, out, kW32, kW64);
  if (need_cq) {
    cq_ = gram_widened(ops, true, all, out, qt, out, kCq32, kCq64);
    double* qt64 = ops.doubles(kQt64, out * all);
    ops.widen(qt, out, qt64, out, out, all);
    qt64_ = qt64;
  }
  if (stats) stats->products += seconds_since(start);
}

Basis ConflictBases::basis(DenseOps& ops, size_t k, int c, ConflictStats* stats) const {
  CM_ASSERT(k < p_.num_tasks() && c >= 1);
  const int64_t out = p_.out, in = p_.in, nk = p_.rows[k].n;
  const size_t K = p_.num_tasks();
  if (nk == 0 || K < 2) return Basis{};  // G_k = -lambda B_k^T B_k has no positive eigenvalue
  StepTimer timer(stats);
  // A_k^T = [T_i X_k^T]_{i != k}: out x (K - 1) n_k.
  float* at = ops.floats(kAt, out * static_cast<int64_t>(K - 1) * nk);
  int64_t col = 0;
  for (size_t i = 0; i < K; ++i) {
    if (i == k) continue;
    ops.sgemm(true, false, out, nk, in, 1.0f, t_[i], in, x_[k], in, 0.0f, at + col * out, out);
    col += nk;
  }
  timer.lap(&ConflictStats::task_products);
  Basis b;
  if (forms_[k] == ConflictForm::Reduced && reduced(ops, k, c, at, stats, &b)) return b;
  return formed(ops, k, c, at, stats);
}

// G_k = A_k^T A_k + lambda Q_k^T Q_k - lambda W, or, for a task the constructor planned as Reduced (no W),
// A_k^T A_k - lambda sum_{i != k} Q_i^T Q_i.
Basis ConflictBases::formed(DenseOps& ops, size_t k, int c, const float* at, ConflictStats* stats) const {
  const int64_t out = p_.out, nk = p_.rows[k].n, ma = static_cast<int64_t>(p_.num_tasks() - 1) * nk;
  const int64_t before = offset_[k], after = offset_.back() - offset_[k + 1];
  const float lambda = static_cast<float>(p_.lambda);
  StepTimer timer(stats);
  float* g32 = ops.floats(kG32, out * out);
  ops.ssyrk(false, out, ma, 1.0f, at, out, 0.0f, g32, out);
  if (w_) {
    ops.ssyrk(false, out, nk, lambda, qt_ + offset_[k] * out, out, 1.0f, g32, out);
  } else {
    ops.ssyrk(false, out, before, -lambda, qt_, out, 1.0f, g32, out);
    ops.ssyrk(false, out, after, -lambda, qt_ + offset_[k + 1] * out, out, 1.0f, g32, out);
  }
  double* g = ops.doubles(kG64, out * out);
  ops.widen(g32, out, g, out, out, out);
  if (w_) ops.axpy(out * out, -p_.lambda, w_, g);
  timer.lap(&ConflictStats::task_forming);
  const TopEigen e = top_positive_eigen(ops, out, g, out, c, o_.eigen, p_.any_sign);
  if (stats) {
    ++stats->formed;
    stats->count(e);
  }
  Basis b = download(ops, e, out, e.vectors, k);
  timer.lap(&ConflictStats::task_eigen);
  return b;
}

int64_t ConflictBases::task_bytes(size_t k) const {
  const int64_t out = p_.out, nk = p_.rows[k].n, all = offset_.back();
  const int64_t ma = static_cast<int64_t>(p_.num_tasks() - 1) * nk, m = ma + all - nk;
  // The eigensolve of order n: a dense copy for the direct solve; above dense_max the probe's float32 copy
  // and the shift's float64 factor.
  const auto eigen = [&](int64_t n) { return n <= o_.eigen.dense_max ? 16 * n * n : 12 * n * n; };
  const int64_t at = 4 * out * ma;
  if (forms_[k] == ConflictForm::Formed) return at + 12 * out * out + eigen(out);  // G_k in float32 and float64
  return at + 4 * (ma * ma + (m - ma) * ma) + 16 * m * m + eigen(m) + 8 * out * ma;  // C's blocks, C, M, A_k^T
}

bool ConflictBases::reduced(DenseOps& ops, size_t k, int c, const float* at, ConflictStats* stats,
                            Basis* basis) const {
  const int64_t out = p_.out, nk = p_.rows[k].n, all = offset_.back();
  const int64_t ma = static_cast<int64_t>(p_.num_tasks() - 1) * nk, mb = all - nk, m = ma + mb;
  const int64_t before = offset_[k], from = offset_[k + 1], after = all - from;
  StepTimer timer(stats);
  // C = F F^T, lower triangle: [A A^T, .; B A^T, B B^T], B's rows being Q's without task k's.
  float* caa = ops.floats(kCaa, ma * ma);
  ops.ssyrk(true, ma, out, 1.0f, at, out, 0.0f, caa, ma);
  // B A^T without task k's own rows of Q: the rows before them and the rows after.
  float* cba = ops.floats(kCba, mb * ma);
  ops.sgemm(true, false, before, ma, out, 1.0f, qt_, out, at, out, 0.0f, cba, mb);
  ops.sgemm(true, false, after, ma, out, 1.0f, qt_ + from * out, out, at, out, 0.0f, cba + before, mb);
  double* l = ops.doubles(kC, m * m);
  ops.widen(caa, ma, l, m, ma, ma);
  ops.widen(cba, mb, l + ma, m, mb, ma);
  double* lbb = l + ma * m + ma;  // the B B^T block
  ops.copy_block(cq_, all, lbb, m, before, before);
  ops.copy_block(cq_ + from, all, lbb + before, m, after, before);
  ops.copy_block(cq_ + from * all + from, all, lbb + before * m + before, m, after, after);
  ops.scale_diagonal(l, m, m, 1.0 + kRidge);
  if (!ops.potrf(m, l, m)) return false;
  ops.zero_upper(l, m, m);
  // M = L^T D L, lower triangle, from L = [L11 0; L21 L22] (triangles L11 of ma, L22 of mb):
  //   M11 = L11^T L11 - lambda L21^T L21,  M21 = -lambda L22^T L21,  M22 = -lambda L22^T L22.
  double* mm = ops.doubles(kM, m * m);
  double* l21 = l + ma, *l22 = l + ma * m + ma;
  ops.lower_gram(ma, 1.0, l, m, mm, m);
  ops.dsyrk(true, ma, mb, -p_.lambda, l21, m, 1.0, mm, m);
  ops.copy_block(l21, m, mm + ma, m, mb, ma);
  ops.trmm_lower_trans(mb, ma, -p_.lambda, l22, m, mm + ma, m);
  ops.lower_gram(mb, -p_.lambda, l22, m, mm + ma * m + ma, m);
  timer.lap(&ConflictStats::task_forming);
  const TopEigen e = top_positive_eigen(ops, m, mm, m, c, o_.eigen);
  if (stats) {
    ++stats->reduced;
    stats->count(e);
  }
  if (!e.solved) fail(p_.where, "cat: the eigensolver did not converge for task " + std::to_string(k + 1));
  const int64_t count = static_cast<int64_t>(e.values.size());
  if (count == 0) {
    *basis = Basis{};
    return true;
  }
  if (p_.any_sign && count < std::min<int64_t>(c, out)) return false;  // G_k's zero eigenvalues come next
  // G_k's eigenvectors F^T D L y / theta.
  double* z = ops.doubles(kZ, m * count);
  ops.dgemm(false, false, ma, count, m, 1.0, l, m, e.vectors, m, 0.0, z, m);
  ops.dgemm(false, false, mb, count, m, -p_.lambda, l + ma, m, e.vectors, m, 0.0, z + ma, m);
  std::vector<double> scale(static_cast<size_t>(count));
  for (int64_t j = 0; j < count; ++j) scale[j] = 1.0 / e.values[j];
  ops.scale_columns(z, m, m, count, scale.data());
  double* at64 = ops.doubles(kAt64, out * ma);
  ops.widen(at, out, at64, out, out, ma);
  double* v = ops.doubles(kV, out * count);
  ops.dgemm(false, false, out, count, ma, 1.0, at64, out, z, m, 0.0, v, out);
  ops.dgemm(false, false, out, count, before, 1.0, qt64_, out, z + ma, m, 1.0, v, out);
  ops.dgemm(false, false, out, count, after, 1.0, qt64_ + from * out, out, z + ma + before, m, 1.0, v, out);
  ops.column_norms(v, out, out, count, scale.data());
  for (double& s : scale) s = 1.0 / s;
  ops.scale_columns(v, out, out, count, scale.data());
  *basis = download(ops, e, out, v, k);
  timer.lap(&ConflictStats::task_eigen);
  return true;
}

void project_off_bases(DenseOps& ops, const std::vector<Basis>& bases, int64_t out, int64_t in,
                       std::vector<float>& task, size_t i) {
  const size_t K = bases.size();
  // U = [B_k]_{k != i}, ascending k, as columns (a Basis stores its vectors as rows: column-major U).
  std::vector<double> u;
  std::vector<int64_t> owner;  // the basis of each column
  for (size_t k = 0; k < K; ++k) {
    if (k == i) continue;
    u.insert(u.end(), bases[k].rows.begin(), bases[k].rows.end());
    owner.insert(owner.end(), static_cast<size_t>(bases[k].cols), static_cast<int64_t>(k));
  }
  const int64_t r = static_cast<int64_t>(owner.size());
  if (r == 0) return;
  // C = U L^-1 from C L = U, column by column from the last: c_j = u_j - sum_{l > j} (u_l . u_j) c_l over the
  // columns l of later bases (L's entries below the diagonal; within a basis they are 0).
  std::vector<double> combined = u;
  for (int64_t j = r - 1; j >= 0; --j) {
    double* cj = combined.data() + j * out;
    for (int64_t l = j + 1; l < r; ++l) {
      if (owner[l] == owner[j]) continue;
      double dot = 0;
      for (int64_t x = 0; x < out; ++x) dot += u[l * out + x] * u[j * out + x];
      const double* cl = combined.data() + l * out;
      for (int64_t x = 0; x < out; ++x) cj[x] -= dot * cl[x];
    }
  }
  // In float32 like the tensor itself (METHODS.md's arithmetic): T_i^T -= (T_i^T U) C^T, column-major.
  CM_ASSERT(static_cast<int64_t>(task.size()) == out * in);
  const std::vector<float> u32(u.begin(), u.end()), c32(combined.begin(), combined.end());
  float* t = ops.output(task.data(), out * in);
  const float* du = ops.input(u32.data(), out * r);
  const float* dc = ops.input(c32.data(), out * r);
  float* y = ops.floats(kCoef, in * r);
  ops.sgemm(false, false, in, r, out, 1.0f, t, in, du, out, 0.0f, y, in);  // T_i^T U
  ops.sgemm(false, true, in, out, r, -1.0f, y, in, dc, out, 1.0f, t, in);  // T_i^T -= (T_i^T U) C^T
  ops.finish_output(t, task.data(), out * in);
  ops.clear_inputs();
}

// The eigenvectors (columns of `vectors`, out rows, ascending values) as a Basis, largest first.
Basis ConflictBases::download(DenseOps& ops, const TopEigen& e, int64_t out, const double* vectors, size_t k) const {
  if (!e.solved) fail(p_.where, "cat: the eigensolver did not converge for task " + std::to_string(k + 1));
  const int64_t count = static_cast<int64_t>(e.values.size());
  std::vector<double> columns(static_cast<size_t>(out * count));
  ops.download(vectors, columns.data(), out * count);
  Basis b;
  b.cols = count;
  b.rows.reserve(columns.size());
  for (int64_t j = count - 1; j >= 0; --j) b.rows.insert(b.rows.end(), columns.begin() + j * out, columns.begin() + (j + 1) * out);
  return b;
}

}  // namespace cm
