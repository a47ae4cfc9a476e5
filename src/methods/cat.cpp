// CAT Merging (METHODS.md, Sun et al. 2025): before task arithmetic, remove from every other task vector
// the parts that conflict with task k on task k's features. Linear units: project T_i (i != k) off the
// top eigenvectors of G_k = sum_{i != k} T_i (S_k - lambda S_i) T_i^T. Norm scales and shifts: zero the
// c entries of T_i (i != k) that score highest for task k. Every basis and mask comes from the original
// task vectors; only then are they applied. Dense path: G_k is formed and decomposed in float64.
#include <algorithm>
#include <string>

#include "common/error.hpp"
#include "methods/linalg.hpp"
#include "methods/method_common.hpp"

namespace cm {
namespace {

// The at most c indices with the largest g among those with g > 0, ties to the lower index.
std::vector<size_t> top_positive(const std::vector<double>& g, int c) {
  std::vector<size_t> idx;
  for (size_t z = 0; z < g.size(); ++z)
    if (g[z] > 0) idx.push_back(z);
  const size_t keep = std::min(idx.size(), static_cast<size_t>(c));
  std::partial_sort(idx.begin(), idx.begin() + keep, idx.end(),
                    [&](size_t a, size_t b) { return g[a] > g[b] || (g[a] == g[b] && a < b); });
  idx.resize(keep);
  return idx;
}

class Cat : public Method {
 public:
  Cat(Params& params, const MergeContext& ctx)
      : ctx_(ctx),
        per_expert_(params.has("alphas")),
        alphas_(read_alphas(params, ctx.num_tasks, 0.3)),
        c_(integer_at_least(params, "c", 3, 0)),
        lambda_(number_in(params, "lambda", 5.0, kNonNegative)),
        c_norm_(integer_at_least(params, "c_norm", 3, 0)),
        lambda_norm_(number_in(params, "lambda_norm", 5.0, kNonNegative)),
        c_shift_(integer_at_least(params, "c_shift", 3, 0)) {}

  bool needs_features() const override { return true; }
  std::vector<double> task_scales() const override { return alphas_; }

  std::vector<float> merge(const MergeUnit& unit, const std::vector<float>& base, TaskVectors& tasks) override {
    if (tasks.size() > 1) {  // with one task there is no conflict: nothing is trimmed
      switch (unit.role()) {
        case Role::Linear: trim_linear(unit, tasks); break;
        case Role::NormScale: trim_entries(unit, tasks, c_norm_, true); break;
        case Role::Shift: trim_entries(unit, tasks, c_shift_, false); break;
        case Role::Other: break;
      }
    }
    if (per_expert_) return task_arithmetic(base, tasks, alphas_);
    // theta_0 + alpha * sum_k That_k, as METHODS.md writes it for one alpha.
    std::vector<float> sum(base.size(), 0.0f);
    for (const auto& t : tasks)
      for (size_t i = 0; i < base.size(); ++i) sum[i] += t[i];
    const float alpha = static_cast<float>(alphas_[0]);
    for (size_t i = 0; i < base.size(); ++i) sum[i] = base[i] + alpha * sum[i];
    return sum;
  }

 private:
  const SiteStats& site(size_t k, const MergeUnit& unit, SiteKind kind, int64_t dim) const {
    CM_ASSERT(ctx_.features != nullptr && k < ctx_.features->size());
    const SiteStats& s = (*ctx_.features)[k].at(unit.tensor->site);
    CM_ASSERT(s.kind == kind && s.dim == dim);
    return s;
  }

  // B_k as rows: the unit eigenvectors of G_k for its (at most c) largest eigenvalues that are > 0.
  std::vector<double> removal_basis(const MergeUnit& unit, size_t k, const std::vector<std::vector<double>>& t,
                                    int64_t out, int64_t in) const {
    const std::vector<double>& s_k = site(k, unit, SiteKind::LinearInput, in).gram;
    std::vector<double> g(out * out, 0.0), m(in * in), p(out * in), w(out);
    for (size_t i = 0; i < t.size(); ++i) {
      if (i == k) continue;
      const std::vector<double>& s_i = site(i, unit, SiteKind::LinearInput, in).gram;
      for (int64_t j = 0; j < in * in; ++j) m[j] = s_k[j] - lambda_ * s_i[j];
      dgemm(false, false, out, in, in, 1.0, t[i].data(), m.data(), 0.0, p.data());  // T_i (S_k - lambda S_i)
      dgemm(false, true, out, out, in, 1.0, p.data(), t[i].data(), 1.0, g.data());  // ... T_i^T
    }
    // G_k is symmetric in exact arithmetic; make it so in floating point before the symmetric solver.
    for (int64_t r = 0; r < out; ++r)
      for (int64_t c = r + 1; c < out; ++c) g[r * out + c] = g[c * out + r] = 0.5 * (g[r * out + c] + g[c * out + r]);
    if (!symmetric_eigen(out, g.data(), w.data()))
      fail(unit.name(), "cat: the eigensolver did not converge for task " + std::to_string(k + 1));
    std::vector<double> basis;
    for (int64_t j = out - 1; j >= 0 && static_cast<int64_t>(basis.size()) < c_ * out && w[j] > 0; --j)
      basis.insert(basis.end(), g.begin() + j * out, g.begin() + (j + 1) * out);
    return basis;
  }

  void trim_linear(const MergeUnit& unit, TaskVectors& tasks) const {
    if (c_ == 0) return;  // no basis to remove: skip the eigendecompositions
    CM_ASSERT(unit.shape.size() == 2);
    const int64_t out = unit.shape[0], in = unit.shape[1];
    const size_t K = tasks.size();
    std::vector<std::vector<double>> t(K);
    for (size_t i = 0; i < K; ++i) t[i].assign(tasks[i].begin(), tasks[i].end());
    std::vector<std::vector<double>> bases(K);
    for (size_t k = 0; k < K; ++k) bases[k] = removal_basis(unit, k, t, out, in);

    std::vector<double> coef;
    for (size_t i = 0; i < K; ++i) {
      for (size_t k = 0; k < K; ++k) {  // ascending k
        const int64_t c = static_cast<int64_t>(bases[k].size()) / out;
        if (k == i || c == 0) continue;
        coef.assign(c * in, 0.0);
        dgemm(false, false, c, in, out, 1.0, bases[k].data(), t[i].data(), 0.0, coef.data());  // B_k^T T_i
        dgemm(true, false, out, in, c, -1.0, bases[k].data(), coef.data(), 1.0, t[i].data());  // T_i -= B_k (..)
        // T_i is a float32 tensor: each projection's result is stored as float32 before the next one.
        for (double& x : t[i]) x = static_cast<float>(x);
      }
      for (int64_t j = 0; j < out * in; ++j) tasks[i][j] = static_cast<float>(t[i][j]);
    }
  }

  // Norm scales (norm = true): g_z = sum_{i != k} T_i[z]^2 (xsq_k[z] - lambda_norm xsq_i[z]), xsq the
  // per-dimension sums of xhat^2. Shifts: g_z = sum_{i != k} T_i[z]^2. Then T_i[z] = 0 for every i != k
  // and z in task k's mask, once all masks are known.
  void trim_entries(const MergeUnit& unit, TaskVectors& tasks, int c, bool norm) const {
    if (c == 0) return;
    const size_t K = tasks.size(), d = tasks[0].size();
    std::vector<const double*> xsq(K);
    for (size_t k = 0; norm && k < K; ++k) xsq[k] = site(k, unit, SiteKind::NormInput, unit.numel()).sqsum.data();
    std::vector<std::vector<size_t>> masks(K);
    std::vector<double> g(d);
    for (size_t k = 0; k < K; ++k) {
      std::fill(g.begin(), g.end(), 0.0);
      for (size_t i = 0; i < K; ++i) {
        if (i == k) continue;
        for (size_t z = 0; z < d; ++z) {
          const double t = tasks[i][z];
          g[z] += t * t * (norm ? xsq[k][z] - lambda_norm_ * xsq[i][z] : 1.0);
        }
      }
      masks[k] = top_positive(g, c);
    }
    for (size_t k = 0; k < K; ++k)
      for (size_t i = 0; i < K; ++i)
        if (i != k)
          for (size_t z : masks[k]) tasks[i][z] = 0.0f;
  }

  MergeContext ctx_;
  bool per_expert_;  // `alphas` given: sum_k alpha_k That_k; else alpha * sum_k That_k
  std::vector<double> alphas_;
  int c_;
  double lambda_;
  int c_norm_;
  double lambda_norm_;
  int c_shift_;
};

}  // namespace

std::unique_ptr<Method> make_cat(Params& params, const MergeContext& ctx) {
  return std::make_unique<Cat>(params, ctx);
}

}  // namespace cm
