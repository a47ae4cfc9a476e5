// RegMean (METHODS.md): for a linear unit, the W minimising sum_k ||X_k W^T - X_k W_k^T||^2 with the Gram
// matrices regularised towards their diagonal: W = (sum_k W_k G_k)(sum_k G_k)^-1 with G_k = S_k / n_k and
// off-diagonal entries times `reduction`, solved by Cholesky in float64. Other units: weight averaging.
#include <algorithm>
#include <string>

#include "common/error.hpp"
#include "methods/linalg.hpp"
#include "methods/method_common.hpp"

namespace cm {
namespace {

class RegMean : public Method {
 public:
  RegMean(Params& params, const MergeContext& ctx)
      : ctx_(ctx), reduction_(number_in(params, "reduction", 0.95, kUnit)) {}

  bool needs_features() const override { return true; }
  // Everything but a linear map is averaged.
  bool elementwise(const TensorSpec& t) const override { return t.role != Role::Linear; }

  // A linear unit: its Gram matrices, the products W_k G_k and the Cholesky solve.
  double cost(const TensorSpec& t) const override {
    const Site* s = ctx_.model ? ctx_.model->site(t.site) : nullptr;
    if (t.role != Role::Linear || !s) return Method::cost(t);
    const double K = ctx_.num_tasks, n = static_cast<double>(std::max(ctx_.exemplars, 0)) * s->rows_per_exemplar;
    const double out = static_cast<double>(t.shape[0] / t.parts), in = static_cast<double>(t.numel() / t.shape[0]);
    return t.parts * (K * (n * in * in + 2.0 * out * in * in) + in * in * in / 3.0 + 2.0 * in * in * out);
  }

  void merge(const MergeUnit& unit, const std::vector<float>& base, TaskVectors& tasks, float* merged) override {
    if (unit.role() != Role::Linear) return weight_average(base, tasks, merged);
    CM_ASSERT(ctx_.features != nullptr && ctx_.features->size() == tasks.size() && unit.shape.size() == 2);
    const int64_t out = unit.shape[0], in = unit.shape[1];
    std::vector<double> gram_sum(in * in, 0.0), rhs(out * in, 0.0), g(in * in), w(out * in);
    Linalg& la = ctx_.linalg ? *ctx_.linalg : cpu_linalg();
    for (size_t k = 0; k < tasks.size(); ++k) {
      const SiteStats& site = (*ctx_.features)[k].at(unit.tensor->site);
      CM_ASSERT(site.kind == SiteKind::LinearInput && site.dim == in);
      if (site.rows == 0) fail(unit.name(), "regmean: no feature rows recorded for expert " + std::to_string(k + 1));
      const double n = static_cast<double>(site.rows);
      const std::vector<double> s = site.gram_matrix();
      for (int64_t r = 0; r < in; ++r)
        for (int64_t c = 0; c < in; ++c) g[r * in + c] = s[r * in + c] / n * (r == c ? 1.0 : reduction_);
      for (int64_t i = 0; i < out * in; ++i) w[i] = static_cast<double>(base[i] + tasks[k][i]);  // W_k, float32
      for (int64_t i = 0; i < in * in; ++i) gram_sum[i] += g[i];
      la.dgemm(false, false, out, in, in, 1.0, w.data(), g.data(), 1.0, rhs.data());  // += W_k G_k
    }
    solve(la, unit, gram_sum, in, out, rhs);  // rows of rhs become the rows of W
    for (int64_t i = 0; i < out * in; ++i) merged[i] = static_cast<float>(rhs[i]);
  }

 private:
  // W (sum_k G_k) = sum_k W_k G_k, i.e. (sum_k G_k) W^T = sum_k G_k W_k^T for the rows of W; when the
  // Cholesky factorisation fails, once more with 1e-6 * mean(diag) added to the diagonal.
  static void solve(Linalg& la, const MergeUnit& unit, const std::vector<double>& gram, int64_t in, int64_t out,
                    std::vector<double>& rhs) {
    std::vector<double> a = gram;
    if (la.solve_spd(in, a.data(), out, rhs.data())) return;
    double trace = 0;
    for (int64_t i = 0; i < in; ++i) trace += gram[i * in + i];
    a = gram;
    for (int64_t i = 0; i < in; ++i) a[i * in + i] += 1e-6 * (trace / static_cast<double>(in));
    if (!la.solve_spd(in, a.data(), out, rhs.data()))
      fail(unit.name(), "regmean: the sum of Gram matrices is not positive definite, even regularised");
  }

  MergeContext ctx_;
  double reduction_;
};

}  // namespace

std::unique_ptr<Method> make_regmean(Params& params, const MergeContext& ctx) {
  return std::make_unique<RegMean>(params, ctx);
}

}  // namespace cm
