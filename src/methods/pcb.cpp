// PCB Merging (METHODS.md): clamp each task vector to its [1e-4, 1 - 1e-4] quantiles, weight every entry
// by intra-task balance exp(K * minmax(a)^2) times inter-task agreement tanh(T_k * sum_j T_j), keep the top
// `ratio` of those scores, and take the weighted mean. Scope statistics come from exact selection in two
// stages (the |T_k| quantiles, then the score quantile), cached per task.
#include <cmath>

#include "common/error.hpp"
#include "merge_math.hpp"
#include "methods/method_common.hpp"
#include "methods/select.hpp"

namespace cm {
namespace {

std::vector<PcbTaskStats> pcb_statistics(const Scope& scope, int K, double ratio, Reducer& reducer) {
  std::vector<PcbTaskStats> st(K);
  std::vector<std::vector<float>> bufs(static_cast<size_t>(scope.workers)), sums(static_cast<size_t>(scope.workers));

  // Stage 1: lo and hi, the entries at sorted positions floor(d*1e-4) and floor(d*(1-1e-4))-1 of |T_k|.
  const auto at_fraction = [](double f, double minus) {
    return [f, minus](uint64_t d) {
      return static_cast<int64_t>(clamp_position(std::floor(static_cast<double>(d) * f) - minus, d));
    };
  };
  std::vector<OrderQuery> queries;
  for (int k = 0; k < K; ++k) {
    queries.push_back({k, at_fraction(1e-4, 0)});
    queries.push_back({k, at_fraction(1.0 - 1e-4, 1)});
  }
  ExactSelect abs_select(K, reducer, scope.workers);
  abs_select.run(queries, magnitudes_of(scope, K));
  for (int k = 0; k < K; ++k) {
    CM_ASSERT(abs_select.count(k) > 0);
    st[k].lo = *abs_select.value(2 * k);
    st[k].hi = *abs_select.value(2 * k + 1);
    // min and max of a_k = clamp(|T_k|, lo, hi): lo and hi themselves, since both are entries of |T_k|
    // (so min |T_k| <= lo and max |T_k| >= hi) and clamp is monotone.
    st[k].a_min = st[k].lo;
    st[k].a_max = st[k].hi;
  }

  // Stage 2: the entry at sorted position floor(d*(1-ratio)) of s_k, and its minimum and maximum.
  const float kf = static_cast<float>(K);
  const ValueSource scores = [&](const ValueEmitter& emit, int64_t sample_stride) {
    scope.visit(
        [&](int w, const MergeUnit&, const TaskVectors& tasks) {
          std::vector<float>& buf = bufs[static_cast<size_t>(w)];
          std::vector<float>& sum_t = sums[static_cast<size_t>(w)];
          const size_t n = tasks[0].size();
          sum_t.assign(n, 0.0f);
          for (int k = 0; k < K; ++k)
            for (size_t i = 0; i < n; ++i) sum_t[i] += tasks[k][i];
          buf.resize(n);
          for (int k = 0; k < K; ++k) {
            for (size_t i = 0; i < n; ++i) buf[i] = pcb_score(tasks[k][i], sum_t[i], st[k], kf);
            emit(w, k, buf.data(), n);
          }
        },
        sample_stride);
  };
  queries.clear();
  for (int k = 0; k < K; ++k) {
    queries.push_back({k, at_fraction(1.0 - ratio, 0)});
    queries.push_back({k, at_fraction(0, 0)});
    queries.push_back({k, [](uint64_t d) { return static_cast<int64_t>(d) - 1; }});
  }
  ExactSelect score_select(K, reducer, scope.workers);
  score_select.run(queries, scores);
  for (int k = 0; k < K; ++k) {
    st[k].q = *score_select.value(3 * k);
    st[k].s_min = *score_select.value(3 * k + 1);
    st[k].s_max = *score_select.value(3 * k + 2);
  }
  return st;
}

class Pcb : public ScopedStatisticsMethod {
 public:
  Pcb(Params& params, const MergeContext& ctx)
      : ScopedStatisticsMethod(params, ctx),
        ratio_(number_in(params, "ratio", 0.1, kOpenUnit)),
        alpha_(static_cast<float>(params.number("alpha", 1.0))) {}

  std::optional<float> final_scale() const override { return alpha_; }
  void direction(const MergeUnit&, const std::vector<float>& base, TaskVectors& tasks, float* d) override {
    const int K = static_cast<int>(tasks.size());
    CM_ASSERT(stats_.size() == tasks.size());  // prepare() or prepare_unit() ran
    std::vector<float> t(K);
    for (size_t i = 0; i < base.size(); ++i) {
      for (int k = 0; k < K; ++k) t[k] = tasks[k][i];
      d[i] = pcb_tau(t.data(), K, stats_.data());
    }
  }
  void merge(const MergeUnit& unit, const std::vector<float>& base, TaskVectors& tasks, float* merged) override {
    direction(unit, base, tasks, merged);
    apply_final_scale(base.data(), alpha_, merged, merged, base.size());
  }

 private:
  void compute_statistics(const Scope& scope, Reducer& reducer) override {
    stats_ = pcb_statistics(scope, ctx_.num_tasks, ratio_, reducer);
  }

  double ratio_;
  float alpha_;
  std::vector<PcbTaskStats> stats_;
};

}  // namespace

std::unique_ptr<Method> make_pcb(Params& params, const MergeContext& ctx) {
  return std::make_unique<Pcb>(params, ctx);
}

}  // namespace cm
