// PCB Merging (METHODS.md): clamp each task vector to its [1e-4, 1 - 1e-4] quantiles, weight every entry
// by intra-task balance exp(K * minmax(a)^2) times inter-task agreement tanh(T_k * sum_j T_j), keep the top
// `ratio` of those scores, and take the weighted mean. Scope statistics come from exact selection in two
// stages of two passes each (the |T_k| quantiles, then the score quantile), cached per task.
#include <cmath>

#include "common/error.hpp"
#include "merge_math.hpp"
#include "methods/method_common.hpp"
#include "methods/select.hpp"

namespace cm {
namespace {

std::vector<PcbTaskStats> pcb_statistics(const Scope& scope, int K, double ratio, Reducer& reducer) {
  std::vector<PcbTaskStats> st(K);
  std::vector<float> buf, sum_t;

  // Stage 1: lo and hi, the entries at sorted positions floor(d*1e-4) and floor(d*(1-1e-4))-1 of |T_k|.
  const ValueSource magnitudes = [&](const ValueEmitter& emit) {
    scope([&](const TaskVectors& tasks) {
      for (int k = 0; k < K; ++k) {
        buf.resize(tasks[k].size());
        for (size_t i = 0; i < buf.size(); ++i) buf[i] = std::fabs(tasks[k][i]);
        emit(k, buf.data(), buf.size());
      }
    });
  };
  ExactSelect abs_select(K, reducer);
  abs_select.scan(magnitudes);
  std::vector<OrderQuery> queries;
  for (int k = 0; k < K; ++k) {
    const uint64_t d = abs_select.count(k);
    CM_ASSERT(d > 0);
    queries.push_back({k, clamp_position(std::floor(static_cast<double>(d) * 1e-4), d)});
    queries.push_back({k, clamp_position(std::floor(static_cast<double>(d) * (1.0 - 1e-4)) - 1, d)});
  }
  const std::vector<float> bounds = abs_select.select(queries, magnitudes);
  for (int k = 0; k < K; ++k) {
    st[k].lo = bounds[2 * k];
    st[k].hi = bounds[2 * k + 1];
    // min and max of a_k = clamp(|T_k|, lo, hi): clamp is monotone, so they are the clamped min and max
    // of |T_k| exactly, with no pass of their own.
    st[k].a_min = pcb_clamp(abs_select.min(k), st[k].lo, st[k].hi);
    st[k].a_max = pcb_clamp(abs_select.max(k), st[k].lo, st[k].hi);
  }

  // Stage 2: min, max and the entry at sorted position floor(d*(1-ratio)) of s_k.
  const float kf = static_cast<float>(K);
  const ValueSource scores = [&](const ValueEmitter& emit) {
    scope([&](const TaskVectors& tasks) {
      const size_t n = tasks[0].size();
      sum_t.assign(n, 0.0f);
      for (int k = 0; k < K; ++k)
        for (size_t i = 0; i < n; ++i) sum_t[i] += tasks[k][i];
      buf.resize(n);
      for (int k = 0; k < K; ++k) {
        for (size_t i = 0; i < n; ++i) buf[i] = pcb_score(tasks[k][i], sum_t[i], st[k], kf);
        emit(k, buf.data(), n);
      }
    });
  };
  ExactSelect score_select(K, reducer);
  score_select.scan(scores);
  queries.clear();
  for (int k = 0; k < K; ++k) {
    const uint64_t d = score_select.count(k);
    queries.push_back({k, clamp_position(std::floor(static_cast<double>(d) * (1.0 - ratio)), d)});
  }
  const std::vector<float> q = score_select.select(queries, scores);
  for (int k = 0; k < K; ++k) {
    st[k].q = q[k];
    st[k].s_min = score_select.min(k);
    st[k].s_max = score_select.max(k);
  }
  return st;
}

class Pcb : public Method {
 public:
  Pcb(Params& params, const MergeContext& ctx)
      : ctx_(ctx),
        ratio_(number_in(params, "ratio", 0.1, kOpenUnit)),
        scope_(read_scope(params)),
        alpha_(static_cast<float>(params.number("alpha", 1.0))) {}

  void prepare(UnitStream& stream) override {
    if (scope_ != StatScope::Model) return;
    CM_ASSERT(ctx_.reducer != nullptr);
    stats_ = pcb_statistics(model_scope(stream), ctx_.num_tasks, ratio_, *ctx_.reducer);
  }

  bool elementwise() const override { return scope_ == StatScope::Model; }

  void merge(const MergeUnit&, const std::vector<float>& base, TaskVectors& tasks, float* merged) override {
    const int K = static_cast<int>(tasks.size());
    std::vector<PcbTaskStats> unit_stats;
    if (scope_ == StatScope::Tensor) {
      LocalReducer local;  // a unit's statistics are its own, whatever the number of ranks
      unit_stats = pcb_statistics(unit_scope(tasks), ctx_.num_tasks, ratio_, local);
    }
    const std::vector<PcbTaskStats>& st = scope_ == StatScope::Tensor ? unit_stats : stats_;
    CM_ASSERT(st.size() == tasks.size());  // prepare() ran
    std::vector<float> t(K);
    for (size_t i = 0; i < base.size(); ++i) {
      for (int k = 0; k < K; ++k) t[k] = tasks[k][i];
      merged[i] = base[i] + alpha_ * pcb_tau(t.data(), K, st.data());
    }
  }

 private:
  MergeContext ctx_;
  double ratio_;
  StatScope scope_;
  float alpha_;
  std::vector<PcbTaskStats> stats_;
};

}  // namespace

std::unique_ptr<Method> make_pcb(Params& params, const MergeContext& ctx) {
  return std::make_unique<Pcb>(params, ctx);
}

}  // namespace cm
