#include "methods/method_common.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "common/cpu_clones.hpp"
#include "common/error.hpp"
#include "merge_math.hpp"

namespace cm {

static std::string interval_text(const Interval& r) {
  std::ostringstream s;
  if (r.hi >= kUnbounded) {
    s << (r.lo_open ? "> " : ">= ") << r.lo;
  } else {
    s << "in " << (r.lo_open ? "(" : "[") << r.lo << ", " << r.hi << (r.hi_open ? ")" : "]");
  }
  return s.str();
}

double number_in(Params& params, const std::string& key, double fallback, const Interval& range) {
  const double v = params.number(key, fallback);
  const bool above = range.lo_open ? v > range.lo : v >= range.lo;
  const bool below = range.hi_open ? v < range.hi : v <= range.hi;
  if (!above || !below) {
    std::ostringstream got;
    got << v;
    fail(params.where() + "." + key, "must be " + interval_text(range) + ", got " + got.str());
  }
  return v;
}

int integer_at_least(Params& params, const std::string& key, int fallback, int least) {
  const int v = params.integer(key, fallback);
  if (v < least) fail(params.where() + "." + key, "must be >= " + std::to_string(least) + ", got " + std::to_string(v));
  return v;
}

uint32_t uint32_param(Params& params, const std::string& key, uint32_t fallback) {
  const double v = params.number(key, fallback);
  if (!(v >= 0 && v <= 4294967295.0 && std::floor(v) == v)) {
    std::ostringstream got;
    got << v;
    fail(params.where() + "." + key, "expected an integer in [0, 4294967295], got " + got.str());
  }
  return static_cast<uint32_t>(v);
}

std::vector<double> read_alphas(Params& params, int num_tasks, double fallback) {
  if (params.has("alphas")) {
    if (params.has("alpha")) fail(params.where() + ".alphas", "give either alpha or alphas, not both");
    return params.numbers("alphas", num_tasks);
  }
  return std::vector<double>(num_tasks, params.number("alpha", fallback));
}

void apply_final_scale(const float* base, float alpha, const float* d, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = base[i] + alpha * d[i];
}

void Method::direction(const MergeUnit&, const std::vector<float>&, TaskVectors&, float*) {
  CM_ASSERT(!"direction() of a method without a final scale");
}

void task_sum(const TaskVectors& tasks, size_t n, float* out) {
  std::fill(out, out + n, 0.0f);
  for (const auto& t : tasks)
    for (size_t i = 0; i < n; ++i) out[i] += t[i];
}

CM_CPU_CLONES void task_arithmetic(const std::vector<float>& base, const TaskVectors& tasks, const std::vector<double>& alphas,
                     float* out) {
  CM_ASSERT(tasks.size() == alphas.size());
  std::fill(out, out + base.size(), 0.0f);
  for (size_t k = 0; k < tasks.size(); ++k) {
    CM_ASSERT(tasks[k].size() == base.size());
    const float alpha = static_cast<float>(alphas[k]);
    const float* t = tasks[k].data();
    for (size_t i = 0; i < base.size(); ++i) out[i] += alpha * t[i];
  }
  for (size_t i = 0; i < base.size(); ++i) out[i] += base[i];
}

namespace {

// The per-task passes of the TIES steps over one stretch of entries, the first `split` of them before the task's
// cut (ties_trim keeps |t| >= threshold there, |t| > threshold after). Kept out of line on purpose: inlined into the
// loop over tasks, GCC's unroll-and-jam (-O3) fuses two tasks into one scalar loop instead of vectorising each;
// __restrict because the stretches never overlap.
[[gnu::noinline]] CM_CPU_CLONES void add_trimmed(const float* __restrict t, float threshold, size_t split, size_t n,
                                                 float* __restrict total) {
  for (size_t i = 0; i < split; ++i) total[i] += std::fabs(t[i]) >= threshold ? t[i] : 0.0f;
  for (size_t i = split; i < n; ++i) total[i] += std::fabs(t[i]) > threshold ? t[i] : 0.0f;
}

[[gnu::noinline]] CM_CPU_CLONES void add_agreeing(const float* __restrict t, float threshold, size_t split, size_t n,
                                                  const float* __restrict gamma, float* __restrict sum,
                                                  float* __restrict count) {
  const auto add = [&](size_t i, float v) {
    const bool agrees = ties_agrees(v, gamma[i]);
    sum[i] += agrees ? v : 0.0f;
    count[i] += agrees ? 1.0f : 0.0f;
  };
  for (size_t i = 0; i < split; ++i) add(i, std::fabs(t[i]) >= threshold ? t[i] : 0.0f);
  for (size_t i = split; i < n; ++i) add(i, std::fabs(t[i]) > threshold ? t[i] : 0.0f);
}

constexpr size_t kTiesStretch = 1024;

// How many of the n entries from flat index `first` lie before the cut.
size_t before_cut(const TiesTaskTrim& trim, int64_t first, size_t n) {
  return static_cast<size_t>(std::clamp<int64_t>(trim.cut - first, 0, static_cast<int64_t>(n)));
}

// total[i] = the sum over tasks (ascending k) of the trimmed values of n <= kTiesStretch entries from `first`.
void trimmed_totals(const TaskVectors& tasks, const std::vector<TiesTaskTrim>& trims, size_t first, int64_t index,
                    size_t n, float* total) {
  std::fill(total, total + n, 0.0f);
  for (size_t k = 0; k < tasks.size(); ++k)
    add_trimmed(tasks[k].data() + first, trims[k].threshold, before_cut(trims[k], index, n), n, total);
}

}  // namespace

// ties_trim and ties_combine (merge_math.hpp, which the GPU runs per element) over a stretch of entries at a time,
// task by task, so that every loop vectorises; the same operations in the same order, so the same bits.
void ties_direction(const TaskVectors& tasks, const std::vector<TiesTaskTrim>& trims, int64_t offset, float majority,
                    TiesDisjoint disjoint, size_t n_total, float* d) {
  const size_t K = tasks.size();
  CM_ASSERT(trims.size() == K);
  float total[kTiesStretch], gamma[kTiesStretch], sum[kTiesStretch], count[kTiesStretch];
  for (size_t first = 0; first < n_total; first += kTiesStretch) {
    const size_t n = std::min(kTiesStretch, n_total - first);
    const int64_t index = offset + static_cast<int64_t>(first);
    trimmed_totals(tasks, trims, first, index, n, total);
    for (size_t i = 0; i < n; ++i) gamma[i] = ties_elect(total[i], majority);
    std::fill(sum, sum + n, 0.0f);
    std::fill(count, count + n, 0.0f);
    for (size_t k = 0; k < K; ++k)
      add_agreeing(tasks[k].data() + first, trims[k].threshold, before_cut(trims[k], index, n), n, gamma, sum, count);
    if (disjoint == TiesDisjoint::Mean) {
      for (size_t i = 0; i < n; ++i) d[first + i] = sum[i] / std::max(count[i], 1.0f);
    } else {
      std::copy(sum, sum + n, d + first);
    }
  }
}

void ties_count_signs(const TaskVectors& tasks, const std::vector<TiesTaskTrim>& trims, int64_t offset, size_t n_total,
                      uint64_t* positive, uint64_t* negative) {
  CM_ASSERT(trims.size() == tasks.size());
  float total[kTiesStretch];
  for (size_t first = 0; first < n_total; first += kTiesStretch) {
    const size_t n = std::min(kTiesStretch, n_total - first);
    trimmed_totals(tasks, trims, first, offset + static_cast<int64_t>(first), n, total);
    uint64_t up = 0, down = 0;
    for (size_t i = 0; i < n; ++i) {
      up += total[i] > 0.0f;
      down += total[i] < 0.0f;
    }
    *positive += up;
    *negative += down;
  }
}

void MajoritySign::add(int worker, const TaskVectors& tasks, const std::vector<TiesTaskTrim>& trims, int64_t offset,
                       size_t n) {
  const size_t w = static_cast<size_t>(worker);
  CM_ASSERT(2 * w + 1 < counts_.size());
  ties_count_signs(tasks, trims, offset, n, &counts_[2 * w], &counts_[2 * w + 1]);
}

float MajoritySign::reduce(Reducer& reducer) const {
  std::vector<uint64_t> total(2, 0);
  for (size_t w = 0; w < counts_.size(); w += 2) {
    total[0] += counts_[w];
    total[1] += counts_[w + 1];
  }
  reducer.sum(total.data(), total.size());
  return total[0] >= total[1] ? 1.0f : -1.0f;
}

TiesDisjoint read_disjoint(Params& params) {
  return params.choice("disjoint", {"mean", "sum"}) == "mean" ? TiesDisjoint::Mean : TiesDisjoint::Sum;
}

double Method::cost(const TensorSpec& t) const {
  return static_cast<double>(t.numel()) * 2.0;
}

Scope stream_scope(UnitStream& stream) {
  Scope s;
  s.workers = stream.workers();
  s.visit = [&stream](const ScopeVisitor& visit, int64_t sample_stride) {
    stream.for_each([&](int worker, const MergeUnit& block, const std::vector<float>&,
                        const TaskVectors& tasks) { visit(worker, block, tasks); },
                    sample_stride);
  };
  return s;
}

ValueSource magnitudes_of(const Scope& scope, int num_tasks) {
  auto buffers = std::make_shared<std::vector<std::vector<float>>>(static_cast<size_t>(scope.workers));
  return [scope, num_tasks, buffers](const ValueEmitter& emit, int64_t sample_stride) {
    scope.visit(
        [&](int w, const MergeUnit&, const TaskVectors& tasks) {
          std::vector<float>& m = (*buffers)[static_cast<size_t>(w)];
          for (int k = 0; k < num_tasks; ++k) {
            m.resize(tasks[k].size());
            for (size_t i = 0; i < m.size(); ++i) m[i] = std::fabs(tasks[k][i]);
            emit(w, k, m.data(), m.size());
          }
        },
        sample_stride);
  };
}

void ScopedStatisticsMethod::prepare(UnitStream& stream) {
  if (scope_ != StatScope::Model) return;
  CM_ASSERT(ctx_.reducer != nullptr);
  compute_statistics(stream_scope(stream), *ctx_.reducer);
}

void ScopedStatisticsMethod::prepare_unit(UnitStream& stream) {
  LocalReducer local;  // a unit's statistics are its own, whatever the number of ranks
  compute_statistics(stream_scope(stream), local);
}

StatScope read_scope(Params& params) {
  return params.choice("scope", {"model", "tensor"}) == "model" ? StatScope::Model : StatScope::Tensor;
}

CatVariant read_cat_variant(Params& params) {
  return params.choice("variant", {"paper", "released"}) == "paper" ? CatVariant::Paper : CatVariant::Released;
}

}  // namespace cm
