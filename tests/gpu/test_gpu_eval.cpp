// catmerge eval on the cuda backend: each zoo expert on its own task's test split, and the base on every
// task, must reproduce the torch accuracy of data/zoo/expert_accuracy.json to 0.1 point, as on the CPU
// (tests/unit/test_eval.cpp), and give the CPU backend's counts.
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "arch/registry.hpp"
#include "gpu_testing.hpp"
#include "io/checkpoint.hpp"
#include "job/eval_config.hpp"
#include "job/eval_score.hpp"

namespace cm {
namespace {

const std::string kZoo = std::string(CATMERGE_SOURCE_DIR) + "/data/zoo/";
const std::string kConfig = std::string(CATMERGE_SOURCE_DIR) + "/configs/zoo.yaml";

class GpuEval : public testing::GpuTest {};

// The test split's counts of one model on one rank, as eval_command computes them.
std::vector<TaskAccuracy> counts_of(const EvalConfig& cfg, const Checkpoint& model,
                                    const std::vector<std::string>& tasks, Backend& backend) {
  EvalScorer scorer(cfg, describe_model(cfg.arch, model), backend, tasks, "test", 0, 1);
  return scorer.counts(checkpoint_weights(model));
}

TEST_F(GpuEval, ExpertsAndBaseReproduceTorchAndCpu) {
  std::ifstream in(kZoo + "expert_accuracy.json");
  const nlohmann::json want = nlohmann::json::parse(in)["accuracy"];
  const EvalConfig cfg = load_eval_config(kConfig, {});
  const auto cuda = make_backend("cuda", 0, "test");
  const auto cpu = make_backend("cpu", 0, "test");
  for (const std::string& task : cfg.tasks) {
    const auto expert = open_checkpoint(kZoo + "experts/" + task);
    const TaskAccuracy got = counts_of(cfg, *expert, {task}, *cuda).at(0);
    EXPECT_NEAR(got.percent(), 100.0 * want[task]["test"]["expert"].get<double>(), 0.1) << task;
    EXPECT_EQ(got.correct, counts_of(cfg, *expert, {task}, *cpu).at(0).correct) << task;
  }
  const auto base = open_checkpoint(kZoo + "base");
  for (const TaskAccuracy& a : counts_of(cfg, *base, cfg.tasks, *cuda))
    EXPECT_NEAR(a.percent(), 100.0 * want[a.task]["test"]["base"].get<double>(), 0.1) << a.task;
}

}  // namespace
}  // namespace cm
