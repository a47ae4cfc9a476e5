// CAT Merging (METHODS.md, Sun et al. 2025): before task arithmetic, remove from every other task vector
// the parts that conflict with task k on task k's features. Linear units: project T_i (i != k) off the
// top eigenvectors of G_k = sum_{i != k} T_i (S_k - lambda S_i) T_i^T, found from the exemplar rows
// (methods/conflict_bases.hpp). Norm scales and shifts: zero the c entries of T_i (i != k) that score
// highest for task k. Every basis and mask comes from the original task vectors; only then are they
// applied. The bases and projections run on the context's Linalg (the backend's device, or the CPU).
// `variant: released` ("CAT as released") takes the c largest eigenvalues or norm scores whatever their sign,
// rescales each projected or masked T_i to its original norm, scores shifts by task k's own entries, treats every
// 1-D tensor that is not a norm scale as a shift, and defaults to the scaled feature model (job/config.cpp).
#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <utility>

#include "common/error.hpp"
#include "methods/cat_masks.hpp"
#include "methods/conflict_timer.hpp"
#include "methods/lapack.hpp"
#include "methods/linalg.hpp"
#include "methods/method_common.hpp"

namespace cm {
namespace {

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
        c_shift_(integer_at_least(params, "c_shift", 3, 0)),
        variant_(read_cat_variant(params)) {}

  bool needs_features() const override { return true; }
  std::vector<double> task_scales() const override { return alphas_; }
  // 'other' tensors take the task-arithmetic sum alone; bases and masks need whole units.
  bool elementwise(const TensorSpec& t) const override { return role_of(t) == Role::Other; }

  // A linear unit: the forward pass's product for it, the removal bases' flop model and the projections;
  // every other tensor: the default pass.
  double cost(const TensorSpec& t) const override {
    const Site* s = ctx_.model ? ctx_.model->site(t.site) : nullptr;
    if (t.role != Role::Linear || !s || c_ == 0 || ctx_.num_tasks < 2) return Method::cost(t);
    const int K = ctx_.num_tasks;
    const int64_t n = static_cast<int64_t>(std::max(ctx_.exemplars, 0)) * s->rows_per_exemplar;
    const int64_t out = t.shape[0] / t.parts, in = t.numel() / t.shape[0];
    const std::vector<int64_t> rows(static_cast<size_t>(K), n);
    const double forward = 2.0 * K * static_cast<double>(n) * static_cast<double>(out * in);
    const double project = 4.0 * K * static_cast<double>((K - 1) * c_) * static_cast<double>(out * in);
    return t.parts * (forward + conflict_unit_flops(out, in, rows, c_, TopEigenOptions{}) + project) + Method::cost(t);
  }

  // The released variant's rescale keeps the merge theta_0 + alpha * D: it restores norms of the task vectors, not
  // of alpha times them, so D does not depend on alpha (its scaled features do, which the job knows).
  std::optional<float> final_scale() const override {
    return per_expert_ ? std::nullopt : std::optional<float>(static_cast<float>(alphas_[0]));
  }
  // sum_k That_k: theta_0 + alpha * that is the merge, as METHODS.md writes it for one alpha.
  void direction(const MergeUnit& unit, const std::vector<float>& base, TaskVectors& tasks, float* d) override {
    trim(unit, tasks);
    task_sum(tasks, base.size(), d);
  }
  void merge(const MergeUnit& unit, const std::vector<float>& base, TaskVectors& tasks, float* merged) override {
    if (per_expert_) {
      trim(unit, tasks);
      return task_arithmetic(base, tasks, alphas_, merged);
    }
    direction(unit, base, tasks, merged);
    apply_final_scale(base.data(), *final_scale(), merged, merged, base.size());
  }

 private:
  bool released() const { return variant_ == CatVariant::Released; }

  // The role CAT gives a tensor: its own, but under the released variant every 1-D tensor that is not a norm
  // scale is a shift (CLIP's class_embedding).
  Role role_of(const TensorSpec& t) const {
    return released() && t.role == Role::Other && t.shape.size() == 1 ? Role::Shift : t.role;
  }

  // T_k -> That_k: every conflict removed (with one task there is none).
  void trim(const MergeUnit& unit, TaskVectors& tasks) {
    if (tasks.size() < 2) return;
    switch (role_of(*unit.tensor)) {
      case Role::Linear: trim_linear(unit, tasks); break;
      case Role::NormScale: trim_norm(unit, tasks); break;
      case Role::Shift: trim_shift(tasks); break;
      case Role::Other: break;
    }
  }

  const SiteStats& site(size_t k, const MergeUnit& unit, SiteKind kind, int64_t dim) const {
    CM_ASSERT(ctx_.features != nullptr && k < ctx_.features->size());
    const SiteStats& s = (*ctx_.features)[k].at(unit.tensor->site);
    CM_ASSERT(s.kind == kind && s.dim == dim);
    return s;
  }

  // Task k's rows at the unit's site: the recorded rows, or rows equivalent to its S where S was kept
  // (at least as many rows as inputs), computed once per site.
  FeatureRows rows_of(size_t k, const MergeUnit& unit, int64_t in) {
    const SiteStats& s = site(k, unit, SiteKind::LinearInput, in);
    if (s.has_rows()) return {s.x.data(), s.rows};
    auto [it, fresh] = factors_.try_emplace({k, unit.tensor->site});
    if (fresh) it->second.first = gram_factor_rows(s.gram.data(), in, &it->second.second);
    return {it->second.first.data(), it->second.second};
  }

  void trim_linear(const MergeUnit& unit, TaskVectors& tasks) {
    if (c_ == 0) return;  // no basis to remove: skip the eigendecompositions
    CM_ASSERT(unit.shape.size() == 2);
    ConflictProblem p;
    p.where = unit.name();
    p.out = unit.shape[0];
    p.in = unit.shape[1];
    p.lambda = lambda_;
    for (size_t k = 0; k < tasks.size(); ++k) {
      p.tasks.push_back(tasks[k].data());
      p.rows.push_back(rows_of(k, unit, p.in));
    }
    p.any_sign = released();
    Linalg& la = ctx_.linalg ? *ctx_.linalg : cpu_linalg();
    const std::vector<Basis> bases = la.top_eigvecs(p, c_, ctx_.cat_stats);
    StepTimer timer(ctx_.cat_stats);
    const std::vector<double> before = released() ? squared_norms(tasks) : std::vector<double>{};
    la.project(bases, p.out, p.in, tasks);  // returns with the results on the host, whatever the device
    if (released()) restore_norms(before, kProjectedAway, tasks);
    timer.lap(&ConflictStats::project);
  }

  // Norm scales: scores from the per-entry statistics of xhat^2, sums over rows (paper) or means (released).
  void trim_norm(const MergeUnit& unit, TaskVectors& tasks) const {
    if (c_norm_ == 0) return;
    std::vector<std::vector<double>> means;
    std::vector<const double*> xsq;
    for (size_t k = 0; k < tasks.size(); ++k) {
      const SiteStats& s = site(k, unit, SiteKind::NormInput, unit.numel());
      if (!released()) {
        xsq.push_back(s.sqsum.data());
        continue;
      }
      std::vector<double>& m = means.emplace_back(s.sqsum.size());
      for (size_t z = 0; z < m.size(); ++z) m[z] = s.sqsum[z] / static_cast<double>(s.rows);
      xsq.push_back(m.data());
    }
    const std::vector<double> before = released() ? squared_norms(tasks) : std::vector<double>{};
    apply_entry_masks(
        cat_entry_masks(tasks, xsq, lambda_norm_, c_norm_, released() ? MaskPick::AnySign : MaskPick::Positive),
        tasks);
    if (released()) restore_norms(before, 0.0, tasks);
  }

  // Shifts: the paper scores from the other tasks' T_i^2, the released variant from task k's own entries (whose
  // rule takes c_shift + 1 entries, so even c_shift = 0 masks each task's largest).
  void trim_shift(TaskVectors& tasks) const {
    if (released()) return apply_entry_masks(released_shift_masks(tasks, c_shift_), tasks);
    if (c_shift_ > 0) apply_entry_masks(cat_entry_masks(tasks, {}, 0.0, c_shift_), tasks);
  }

  // The released variant's rescale: sum of squares of each T_i (float64) before its projections or masks ...
  static std::vector<double> squared_norms(const TaskVectors& tasks) {
    std::vector<double> n2;
    for (const auto& t : tasks) {
      double s = 0;
      for (float v : t) s += static_cast<double>(v) * v;
      n2.push_back(s);
    }
    return n2;
  }
  // ... and each T_i brought back to that norm after them; a T_i they made 0 stays 0. Masks make an exact 0; a
  // float32 projection leaves rounding (~1e-7 of the norm) where the exact result is 0, so a projected T_i counts
  // as 0 (and is set to 0) below kProjectedAway of its norm, instead of scaling that rounding up to the norm.
  static constexpr double kProjectedAway = 1e-5;
  static void restore_norms(const std::vector<double>& before, double zero_below, TaskVectors& tasks) {
    const std::vector<double> now = squared_norms(tasks);
    for (size_t i = 0; i < tasks.size(); ++i) {
      if (!(now[i] > zero_below * zero_below * before[i])) {
        std::fill(tasks[i].begin(), tasks[i].end(), 0.0f);
        continue;
      }
      const float scale = static_cast<float>(std::sqrt(before[i]) / std::sqrt(now[i]));
      for (float& v : tasks[i]) v *= scale;
    }
  }

  MergeContext ctx_;
  std::map<std::pair<size_t, std::string>, std::pair<std::vector<float>, int64_t>> factors_;  // (task, site)
  bool per_expert_;  // `alphas` given: sum_k alpha_k That_k; else alpha * sum_k That_k
  std::vector<double> alphas_;
  int c_;
  double lambda_;
  int c_norm_;
  double lambda_norm_;
  int c_shift_;
  CatVariant variant_;
};

}  // namespace

std::unique_ptr<Method> make_cat(Params& params, const MergeContext& ctx) {
  return std::make_unique<Cat>(params, ctx);
}

}  // namespace cm
