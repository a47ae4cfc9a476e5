// Task Arithmetic (METHODS.md): theta = theta_0 + sum_k alpha_k T_k.
#include "methods/method_common.hpp"

namespace cm {
namespace {

class TaskArithmetic : public Method {
 public:
  explicit TaskArithmetic(std::vector<double> alphas) : alphas_(std::move(alphas)) {}
  bool elementwise(const TensorSpec&) const override { return true; }
  void merge(const MergeUnit&, const std::vector<float>& base, TaskVectors& tasks, float* merged) override {
    task_arithmetic(base, tasks, alphas_, merged);
  }

 private:
  std::vector<double> alphas_;
};

}  // namespace

std::unique_ptr<Method> make_task_arithmetic(Params& params, const MergeContext& ctx) {
  return std::make_unique<TaskArithmetic>(read_alphas(params, ctx.num_tasks, 0.3));
}

}  // namespace cm
