// Weight averaging (METHODS.md): theta = theta_0 + (1/K) sum_k T_k.
#include <algorithm>

#include "methods/method_common.hpp"

namespace cm {

void weight_average(const std::vector<float>& base, const TaskVectors& tasks, float* out) {
  std::fill(out, out + base.size(), 0.0f);
  for (const auto& t : tasks)
    for (size_t i = 0; i < base.size(); ++i) out[i] += t[i];
  const float inv_k = static_cast<float>(1.0 / static_cast<double>(tasks.size()));
  for (size_t i = 0; i < base.size(); ++i) out[i] = base[i] + inv_k * out[i];
}

namespace {

class WeightAverage : public Method {
 public:
  bool elementwise(const TensorSpec&) const override { return true; }
  void merge(const MergeUnit&, const std::vector<float>& base, TaskVectors& tasks, float* merged) override {
    weight_average(base, tasks, merged);
  }
};

}  // namespace

std::unique_ptr<Method> make_weight_average(Params&, const MergeContext&) { return std::make_unique<WeightAverage>(); }

}  // namespace cm
