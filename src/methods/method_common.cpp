#include "methods/method_common.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

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

void task_arithmetic(const std::vector<float>& base, const TaskVectors& tasks, const std::vector<double>& alphas,
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

void ties_combine(const std::vector<float>& base, const TaskVectors& tasks, const std::vector<float>& thresholds,
                  float alpha, float* out) {
  const int K = static_cast<int>(tasks.size());
  CM_ASSERT(thresholds.size() == tasks.size());
  std::vector<float> kept(K);
  for (size_t i = 0; i < base.size(); ++i) {
    for (int k = 0; k < K; ++k) kept[k] = ties_trim(tasks[k][i], thresholds[k]);
    out[i] = base[i] + alpha * ties_disjoint_mean(kept.data(), K);
  }
}

double Method::cost(const TensorSpec& t) const {
  return static_cast<double>(t.numel()) * 2.0;
}

Scope model_scope(UnitStream& stream) {
  return [&stream](const ScopeVisitor& visit) {
    stream.for_each([&](const MergeUnit&, const std::vector<float>&, const TaskVectors& tasks) { visit(tasks); });
  };
}

Scope unit_scope(const TaskVectors& tasks) {
  return [&tasks](const ScopeVisitor& visit) { visit(tasks); };
}

StatScope read_scope(Params& params) {
  return params.choice("scope", {"model", "tensor"}) == "model" ? StatScope::Model : StatScope::Tensor;
}

}  // namespace cm
