// Weight averaging (METHODS.md): theta = theta_0 + (1/K) sum_k T_k.
#include "methods/method_common.hpp"

namespace cm {

std::vector<float> weight_average(const std::vector<float>& base, const TaskVectors& tasks) {
  std::vector<float> sum(base.size(), 0.0f);
  for (const auto& t : tasks)
    for (size_t i = 0; i < base.size(); ++i) sum[i] += t[i];
  const float inv_k = static_cast<float>(1.0 / static_cast<double>(tasks.size()));
  for (size_t i = 0; i < base.size(); ++i) sum[i] = base[i] + inv_k * sum[i];
  return sum;
}

namespace {

class WeightAverage : public Method {
 public:
  std::vector<float> merge(const MergeUnit&, const std::vector<float>& base, TaskVectors& tasks) override {
    return weight_average(base, tasks);
  }
};

}  // namespace

std::unique_ptr<Method> make_weight_average(Params&, const MergeContext&) { return std::make_unique<WeightAverage>(); }

}  // namespace cm
