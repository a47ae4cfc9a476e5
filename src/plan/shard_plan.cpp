#include "plan/shard_plan.hpp"

#include <algorithm>
#include <cstdio>
#include <limits>

#include "common/error.hpp"

namespace cm {

namespace {

uint64_t tensor_bytes(const TensorSpec& t) { return static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype); }

// Optimal contiguous partition of `w` into exactly `parts` non-empty runs minimising the largest run:
// cost[p][i] = best largest run when the first i items form p runs. O(parts * n^2), which is small
// for models (hundreds of tensors, at most a few hundred ranks).
std::vector<int> best_cuts(const std::vector<double>& w, int parts) {
  const int n = static_cast<int>(w.size());
  std::vector<double> prefix(n + 1, 0);
  for (int i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + w[i];
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> cost(parts + 1, std::vector<double>(n + 1, inf));
  std::vector<std::vector<int>> from(parts + 1, std::vector<int>(n + 1, 0));
  cost[0][0] = 0;
  for (int p = 1; p <= parts; ++p)
    for (int i = p; i <= n - (parts - p); ++i)
      // Scan the last run's start from the right so that, among equal costs, earlier runs are fuller.
      for (int j = i - 1; j >= p - 1; --j) {
        if (cost[p - 1][j] == inf) continue;
        const double c = std::max(cost[p - 1][j], prefix[i] - prefix[j]);
        if (c < cost[p][i]) {
          cost[p][i] = c;
          from[p][i] = j;
        }
        if (prefix[i] - prefix[j] >= cost[p][i]) break;  // longer last runs only cost more
      }
  std::vector<int> ends(parts);
  for (int p = parts, i = n; p > 0; i = from[p][i], --p) ends[p - 1] = i;
  return ends;
}

}  // namespace

double ShardPlan::largest_over_mean() const {
  double largest = 0;
  for (const auto& r : ranks) largest = std::max(largest, r.cost);
  return total_cost <= 0 ? 1.0 : largest * static_cast<double>(ranks.size()) / total_cost;
}

ShardPlan make_plan(const ModelSpec& model, int ranks, const std::vector<double>& costs) {
  const int n = static_cast<int>(model.tensors.size());
  if (ranks < 1) fail("plan", "the number of ranks must be at least 1");
  if (ranks > n)
    fail("plan", std::to_string(ranks) + " ranks but the model has only " + std::to_string(n) +
                     " tensors: use at most " + std::to_string(n) + " ranks");
  CM_ASSERT(costs.empty() || costs.size() == model.tensors.size());
  std::vector<double> w;
  for (size_t i = 0; i < model.tensors.size(); ++i)
    w.push_back(costs.empty() ? static_cast<double>(tensor_bytes(model.tensors[i])) : costs[i]);
  const std::vector<int> ends = best_cuts(w, ranks);
  ShardPlan plan;
  int begin = 0;
  for (int r = 0; r < ranks; ++r) {
    RankShard s;
    s.first_tensor = begin;
    s.end_tensor = ends[r];
    s.first_stage = model.tensors[begin].stage;
    s.last_stage = model.tensors[ends[r] - 1].stage;
    for (int i = begin; i < ends[r]; ++i) {
      s.bytes += tensor_bytes(model.tensors[i]);
      s.cost += w[i];
    }
    plan.total_bytes += s.bytes;
    plan.total_cost += s.cost;
    plan.ranks.push_back(s);
    begin = ends[r];
  }
  return plan;
}

std::string describe_plan(const ShardPlan& plan, const ModelSpec& model) {
  // A stage is printed with '~' when the rank holds only some of its tensors.
  auto stage_count = [&](int stage) {
    return std::count_if(model.tensors.begin(), model.tensors.end(), [&](const TensorSpec& t) { return t.stage == stage; });
  };
  auto held = [&](const RankShard& s, int stage) {
    return std::count_if(model.tensors.begin() + s.first_tensor, model.tensors.begin() + s.end_tensor,
                         [&](const TensorSpec& t) { return t.stage == stage; });
  };
  std::string out = "rank  stages          tensors          bytes   share          cost   share\n";
  char line[200];
  const auto share = [](double part, double total) { return total > 0 ? 100.0 * part / total : 0.0; };
  for (size_t r = 0; r < plan.ranks.size(); ++r) {
    const RankShard& s = plan.ranks[r];
    const std::string first = std::to_string(s.first_stage) + (held(s, s.first_stage) < stage_count(s.first_stage) ? "~" : "");
    const std::string last = std::to_string(s.last_stage) + (held(s, s.last_stage) < stage_count(s.last_stage) ? "~" : "");
    const std::string stages = s.first_stage == s.last_stage ? first : first + "-" + last;
    std::snprintf(line, sizeof line, "%4zu  %-14s  %7d  %13llu  %5.2f%%  %12.4g  %5.2f%%\n", r, stages.c_str(),
                  s.end_tensor - s.first_tensor, static_cast<unsigned long long>(s.bytes),
                  share(static_cast<double>(s.bytes), static_cast<double>(plan.total_bytes)), s.cost,
                  share(s.cost, plan.total_cost));
    out += line;
  }
  std::snprintf(line, sizeof line,
                "%zu ranks, %d stages (0 = embeddings, last = final), %zu tensors, %llu bytes, cost %.4g; largest "
                "cost share / mean = %.3f\n",
                plan.ranks.size(), model.num_stages, model.tensors.size(),
                static_cast<unsigned long long>(plan.total_bytes), plan.total_cost, plan.largest_over_mean());
  return out + line;
}

}  // namespace cm
