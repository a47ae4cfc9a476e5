#include "methods/cat_masks.hpp"

#include <algorithm>
#include <limits>

#include "common/error.hpp"
#include "merge_math.hpp"

namespace cm {

std::vector<std::vector<int64_t>> cat_entry_masks(const TaskVectors& tasks, const std::vector<const double*>& xsq,
                                                  double lambda, int c, MaskPick pick) {
  const int K = static_cast<int>(tasks.size());
  const size_t d = tasks.empty() ? 0 : tasks[0].size();
  CM_ASSERT(xsq.empty() || static_cast<int>(xsq.size()) == K);
  std::vector<std::vector<double>> g(K, std::vector<double>(d));
  std::vector<float> t(K);
  std::vector<double> x(K);
  for (size_t z = 0; z < d; ++z) {
    for (int i = 0; i < K; ++i) {
      t[i] = tasks[i][z];
      if (!xsq.empty()) x[i] = xsq[i][z];
    }
    for (int k = 0; k < K; ++k) g[k][z] = cat_entry_score(t.data(), xsq.empty() ? nullptr : x.data(), K, k, lambda);
  }
  std::vector<std::vector<int64_t>> masks(K);
  for (int k = 0; k < K; ++k) {
    std::vector<int64_t>& idx = masks[k];
    for (size_t z = 0; z < d; ++z)
      if (pick == MaskPick::AnySign || g[k][z] > 0) idx.push_back(static_cast<int64_t>(z));
    const size_t keep = std::min(idx.size(), static_cast<size_t>(std::max(c, 0)));
    const std::vector<double>& gk = g[k];
    std::partial_sort(idx.begin(), idx.begin() + keep, idx.end(),
                      [&](int64_t a, int64_t b) { return ranks_before(gk[a], a, gk[b], b); });
    idx.resize(keep);
  }
  return masks;
}

std::vector<std::vector<int64_t>> released_shift_masks(const TaskVectors& tasks, int c) {
  const int K = static_cast<int>(tasks.size());
  const int64_t d = tasks.empty() ? 0 : static_cast<int64_t>(tasks[0].size());
  std::vector<std::vector<int64_t>> masks(K);
  std::vector<double> g(static_cast<size_t>(d)), sorted;
  for (int k = 0; k < K; ++k) {
    for (int64_t z = 0; z < d; ++z) {
      const double t = tasks[k][z];
      g[z] = static_cast<double>(K - 1) * (t * t);
    }
    double least = -std::numeric_limits<double>::infinity();  // d - c < 1: every entry
    if (d - c >= 1) {
      sorted = g;
      std::nth_element(sorted.begin(), sorted.begin() + (d - c - 1), sorted.end());
      least = sorted[static_cast<size_t>(d - c - 1)];
    }
    for (int64_t z = 0; z < d; ++z)
      if (g[z] >= least) masks[k].push_back(z);
  }
  return masks;
}

void apply_entry_masks(const std::vector<std::vector<int64_t>>& masks, TaskVectors& tasks) {
  for (size_t k = 0; k < masks.size(); ++k)
    for (size_t i = 0; i < tasks.size(); ++i)
      if (i != k)
        for (int64_t z : masks[k]) tasks[i][static_cast<size_t>(z)] = 0.0f;
}

}  // namespace cm
