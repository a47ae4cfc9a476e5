// CAT Merging (METHODS.md, Sun et al. 2025): before task arithmetic, remove from every other task vector
// the parts that conflict with task k on task k's features. Linear units: project T_i (i != k) off the
// top eigenvectors of G_k = sum_{i != k} T_i (S_k - lambda S_i) T_i^T, found from the exemplar rows
// (methods/conflict_bases.hpp). Norm scales and shifts: zero the c entries of T_i (i != k) that score
// highest for task k. Every basis and mask comes from the original task vectors; only then are they
// applied. The bases and projections run on the context's Linalg (the backend's device, or the CPU).
#include <algorithm>
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
        c_shift_(integer_at_least(params, "c_shift", 3, 0)) {}

  bool needs_features() const override { return true; }
  std::vector<double> task_scales() const override { return alphas_; }
  // 'other' tensors take the task-arithmetic sum alone; bases and masks need whole units.
  bool elementwise(const TensorSpec& t) const override { return t.role == Role::Other; }

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
  // T_k -> That_k: every conflict removed (with one task there is none).
  void trim(const MergeUnit& unit, TaskVectors& tasks) {
    if (tasks.size() < 2) return;
    switch (unit.role()) {
      case Role::Linear: trim_linear(unit, tasks); break;
      case Role::NormScale: trim_entries(unit, tasks, c_norm_, true); break;
      case Role::Shift: trim_entries(unit, tasks, c_shift_, false); break;
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
    Linalg& la = ctx_.linalg ? *ctx_.linalg : cpu_linalg();
    const std::vector<Basis> bases = la.top_eigvecs(p, c_, ctx_.cat_stats);
    StepTimer timer(ctx_.cat_stats);
    la.project(bases, p.out, p.in, tasks);  // returns with the results on the host, whatever the device
    timer.lap(&ConflictStats::project);
  }

  // Norm scales (norm = true): scores from the per-entry sums of xhat^2; shifts: from T_i^2 alone.
  void trim_entries(const MergeUnit& unit, TaskVectors& tasks, int c, bool norm) const {
    if (c == 0) return;
    std::vector<const double*> xsq;
    for (size_t k = 0; norm && k < tasks.size(); ++k)
      xsq.push_back(site(k, unit, SiteKind::NormInput, unit.numel()).sqsum.data());
    apply_entry_masks(cat_entry_masks(tasks, xsq, lambda_norm_, c), tasks);
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
};

}  // namespace

std::unique_ptr<Method> make_cat(Params& params, const MergeContext& ctx) {
  return std::make_unique<Cat>(params, ctx);
}

}  // namespace cm
