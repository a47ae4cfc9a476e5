// Task Arithmetic (METHODS.md): theta = theta_0 + sum_k alpha_k T_k; with one `alpha`, theta_0 + alpha sum_k T_k.
#include "methods/method_common.hpp"

namespace cm {
namespace {

class TaskArithmetic : public Method {
 public:
  TaskArithmetic(std::vector<double> alphas, bool per_expert) : alphas_(std::move(alphas)), per_expert_(per_expert) {}
  bool elementwise(const TensorSpec&) const override { return true; }
  std::optional<float> final_scale() const override {
    return per_expert_ ? std::nullopt : std::optional<float>(static_cast<float>(alphas_[0]));
  }
  void direction(const MergeUnit&, const std::vector<float>& base, TaskVectors& tasks, float* d) override {
    task_sum(tasks, base.size(), d);
  }
  void merge(const MergeUnit& unit, const std::vector<float>& base, TaskVectors& tasks, float* merged) override {
    if (per_expert_) return task_arithmetic(base, tasks, alphas_, merged);
    direction(unit, base, tasks, merged);
    apply_final_scale(base.data(), *final_scale(), merged, merged, base.size());
  }

 private:
  std::vector<double> alphas_;
  bool per_expert_;  // `alphas` given: sum_k alpha_k T_k
};

}  // namespace

std::unique_ptr<Method> make_task_arithmetic(Params& params, const MergeContext& ctx) {
  const bool per_expert = params.has("alphas");
  return std::make_unique<TaskArithmetic>(read_alphas(params, ctx.num_tasks, 0.3), per_expert);
}

}  // namespace cm
