// The shard plan: contiguous, complete, optimal against brute force, balanced on LLaMA-2-70B's shapes.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "arch/registry.hpp"
#include "common/error.hpp"
#include "io/checkpoint.hpp"
#include "plan/shard_plan.hpp"
#include "test_support.hpp"

namespace cm {
namespace {

ModelSpec model_of_sizes(const std::vector<int64_t>& sizes) {
  ModelSpec m;
  for (size_t i = 0; i < sizes.size(); ++i)
    m.tensors.push_back(TensorSpec{"t" + std::to_string(i), Role::Other, DType::F32, {sizes[i]}, static_cast<int>(i / 3), "", 1});
  m.num_stages = static_cast<int>(sizes.size() / 3 + 1);
  return m;
}

// Smallest possible largest run over every way to cut `w` into `parts` non-empty runs.
uint64_t brute_force(const std::vector<uint64_t>& w, size_t first, int parts) {
  if (parts == 1) {
    uint64_t s = 0;
    for (size_t i = first; i < w.size(); ++i) s += w[i];
    return s;
  }
  uint64_t best = UINT64_MAX, run = 0;
  for (size_t end = first + 1; end + (parts - 1) <= w.size(); ++end) {
    run += w[end - 1];
    best = std::min(best, std::max(run, brute_force(w, end, parts - 1)));
  }
  return best;
}

void expect_contiguous(const ShardPlan& p, const ModelSpec& m) {
  int next = 0;
  for (const RankShard& s : p.ranks) {
    EXPECT_EQ(s.first_tensor, next);
    EXPECT_FALSE(s.empty());
    EXPECT_EQ(s.first_stage, m.tensors[s.first_tensor].stage);
    EXPECT_EQ(s.last_stage, m.tensors[s.end_tensor - 1].stage);
    next = s.end_tensor;
  }
  EXPECT_EQ(next, static_cast<int>(m.tensors.size()));
}

TEST(ShardPlan, OptimalAgainstBruteForce) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 60; ++trial) {
    std::vector<int64_t> sizes(3 + rng() % 9);
    for (auto& s : sizes) s = 1 + rng() % 100;
    const ModelSpec m = model_of_sizes(sizes);
    const int ranks = 1 + static_cast<int>(rng() % sizes.size());
    const ShardPlan p = make_plan(m, ranks);
    expect_contiguous(p, m);
    std::vector<uint64_t> w;
    for (auto s : sizes) w.push_back(static_cast<uint64_t>(s) * 4);
    uint64_t largest = 0;
    for (const auto& r : p.ranks) largest = std::max(largest, r.bytes);
    EXPECT_EQ(largest, brute_force(w, 0, ranks)) << "trial " << trial;
  }
}

TEST(ShardPlan, MoreRanksThanTensorsIsAnError) {
  EXPECT_THROW(make_plan(model_of_sizes({1, 2, 3}), 4), Error);
}

TEST(ShardPlan, Llama2_70bBalancedFor8And64Ranks) {
  const auto shapes = open_checkpoint((test::source_dir() / "data/shapes/llama-2-70b.json").string());
  const ModelSpec m = describe_model("llama", *shapes).model;
  EXPECT_EQ(m.num_stages, 82);
  EXPECT_EQ(m.tensors.size(), 80u * 9 + 3);
  for (int ranks : {8, 64}) {
    const ShardPlan p = make_plan(m, ranks);
    expect_contiguous(p, m);
    EXPECT_LT(p.largest_over_mean(), 1.10) << ranks << " ranks";
  }
}

TEST(ShardPlan, PlanCommandPrintsTheTableFromHeadersOnly) {
  const auto r = test::run_catmerge(
      {"plan", (test::source_dir() / "configs/llama2-70b-plan.yaml").string(), "--ranks", "64"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("64 ranks, 82 stages"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("largest cost share / mean = 1.0"), std::string::npos) << r.out;
}

TEST(LaunchCheck, SrunWorldSmallerThanSlurmNtasksFails) {
  // A task of a 2-task srun step that finds itself alone (a singleton MPI world): the broken PMIx case.
  setenv("SLURM_NTASKS", "2", 1);
  setenv("SLURM_STEP_ID", "0", 1);
  const auto r = test::run_catmerge({"run", (test::source_dir() / "configs/default.yaml").string()});
  unsetenv("SLURM_NTASKS");
  unsetenv("SLURM_STEP_ID");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("Slurm started 2 tasks but MPI sees a world of 1"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace cm
