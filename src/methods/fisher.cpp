// Fisher merging (METHODS.md): theta = sum_k (F_k + 1e-6) theta_k / sum_k (F_k + 1e-6), element-wise, with
// the user's diagonal Fisher values F_k.
#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.hpp"
#include "methods/method_common.hpp"

namespace cm {
namespace {

class Fisher : public Method {
 public:
  explicit Fisher(const MergeContext& ctx) : ctx_(ctx) {}

  bool elementwise(const TensorSpec&) const override { return true; }
  void merge(const MergeUnit& unit, const std::vector<float>& base, TaskVectors& tasks, float* merged) override {
    CM_ASSERT(ctx_.fisher != nullptr);
    float* num = merged;
    std::fill(num, num + base.size(), 0.0f);
    std::vector<float> den(base.size(), 0.0f);
    for (size_t k = 0; k < tasks.size(); ++k) {
      const std::vector<float> fisher = ctx_.fisher(static_cast<int>(k), unit);
      CM_ASSERT(fisher.size() == base.size());
      for (size_t i = 0; i < base.size(); ++i) {
        if (!(fisher[i] >= 0.0f) || std::isinf(fisher[i]))
          fail(unit.name(), "fisher: expert " + std::to_string(k + 1) + " has a negative or non-finite Fisher value");
        const float f = fisher[i] + 1e-6f;
        num[i] += f * (base[i] + tasks[k][i]);
        den[i] += f;
      }
    }
    for (size_t i = 0; i < base.size(); ++i) num[i] /= den[i];
  }

 private:
  MergeContext ctx_;
};

}  // namespace

std::unique_ptr<Method> make_fisher(Params&, const MergeContext& ctx) { return std::make_unique<Fisher>(ctx); }

}  // namespace cm
