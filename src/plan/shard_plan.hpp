#pragma once
// The shard plan: which rank owns which tensors. Tensors are taken in model order (stage by stage) and cut
// into contiguous runs, one per rank, minimising the largest run's cost: the method's estimate of each
// tensor's work (Method::cost: flops for CAT's linear units, a pass over the values for element-wise
// methods), so that ranks finish together. A run may begin or end inside a stage (a transformer block) so
// that many ranks can share few, large blocks evenly; a rank runs the forward pass of every stage it touches.
#include <cstdint>
#include <string>
#include <vector>

#include "arch/model_spec.hpp"

namespace cm {

struct RankShard {
  int first_tensor = 0, end_tensor = 0;  // [first, end) in ModelSpec::tensors
  int first_stage = 0, last_stage = 0;   // stages of those tensors, inclusive
  uint64_t bytes = 0;                    // bytes of those tensors in the base checkpoint
  double cost = 0;                       // their estimated work
  bool empty() const { return first_tensor == end_tensor; }
};

struct ShardPlan {
  std::vector<RankShard> ranks;
  uint64_t total_bytes = 0;
  double total_cost = 0;
  double largest_over_mean() const;  // of the cost
};

// costs[i]: the work of model.tensors[i]; empty: each tensor's bytes. Throws cm::Error when there are more
// ranks than tensors.
ShardPlan make_plan(const ModelSpec& model, int ranks, const std::vector<double>& costs = {});

// The table `catmerge plan` prints: rank, stages, tensors, bytes, cost and each one's share of the total.
std::string describe_plan(const ShardPlan& plan, const ModelSpec& model);

}  // namespace cm
