// catmerge eval on the cuda backend: each zoo expert on its own task's test split, and the base on every
// task, must reproduce the torch accuracy of data/zoo/expert_accuracy.json to 0.1 point, as on the CPU
// (tests/unit/test_eval.cpp), and give the CPU backend's counts.
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "gpu_testing.hpp"
#include "io/checkpoint.hpp"
#include "job/eval.hpp"
#include "job/eval_config.hpp"

namespace cm {
namespace {

const std::string kZoo = std::string(CATMERGE_SOURCE_DIR) + "/data/zoo/";
const std::string kConfig = std::string(CATMERGE_SOURCE_DIR) + "/configs/zoo.yaml";

class GpuEval : public testing::GpuTest {};

TEST_F(GpuEval, ExpertsAndBaseReproduceTorchAndCpu) {
  std::ifstream in(kZoo + "expert_accuracy.json");
  const nlohmann::json want = nlohmann::json::parse(in)["accuracy"];
  const EvalConfig cfg = load_eval_config(kConfig, {});
  const auto cuda = make_backend("cuda", 0, "test");
  const auto cpu = make_backend("cpu", 0, "test");
  for (const std::string& task : cfg.tasks) {
    const auto expert = open_checkpoint(kZoo + "experts/" + task);
    const TaskAccuracy got = eval_counts(cfg, *expert, "test", {task}, *cuda, 0, 1).at(0);
    EXPECT_NEAR(got.percent(), 100.0 * want[task]["test"]["expert"].get<double>(), 0.1) << task;
    EXPECT_EQ(got.correct, eval_counts(cfg, *expert, "test", {task}, *cpu, 0, 1).at(0).correct) << task;
  }
  const auto base = open_checkpoint(kZoo + "base");
  for (const TaskAccuracy& a : eval_counts(cfg, *base, "test", cfg.tasks, *cuda, 0, 1))
    EXPECT_NEAR(a.percent(), 100.0 * want[a.task]["test"]["base"].get<double>(), 0.1) << a.task;
}

}  // namespace
}  // namespace cm
