// catmerge eval on the committed zoo (data/zoo, made by tools/zoo/make_zoo.py): each unmerged expert on
// its own task's test split must reproduce the accuracy that the zoo script measured in torch
// (data/zoo/expert_accuracy.json) to 0.1 percentage point, which checks the forward pass, the heads and the
// pixel conversion end to end; the split over ranks must add up to the whole set; bad input is one line.
// A token model (data/fixtures/eval, made by tools/reference: labels against transformers' pooled output)
// goes through the same command.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "arch/clip_vit.hpp"
#include "backend/backend.hpp"
#include "comm/communicator.hpp"
#include "common/error.hpp"
#include "io/checkpoint.hpp"
#include "job/eval.hpp"
#include "job/eval_config.hpp"
#include "test_support.hpp"

namespace cm {
namespace {

const std::string kZoo = std::string(CATMERGE_SOURCE_DIR) + "/data/zoo/";
const std::string kConfig = std::string(CATMERGE_SOURCE_DIR) + "/configs/zoo.yaml";

nlohmann::json torch_accuracy() {
  std::ifstream in(kZoo + "expert_accuracy.json");
  return nlohmann::json::parse(in);
}

using test::error_of;

TEST(Eval, ConfigNamesTheZooTasksInExpertOrder) {
  const EvalConfig cfg = load_eval_config(kConfig, {});
  const nlohmann::json want = torch_accuracy()["tasks"];
  ASSERT_EQ(cfg.tasks.size(), want.size());
  for (size_t k = 0; k < cfg.tasks.size(); ++k) EXPECT_EQ(cfg.tasks[k], want[k].get<std::string>());
  EXPECT_EQ(cfg.heads, kZoo + "heads.safetensors");
  EXPECT_EQ(cfg.data, kZoo + "eval.h5");
}

// The acceptance check of the zoo: every expert, its own task, the test split, against torch.
TEST(Eval, EachExpertReproducesTorchAccuracy) {
  const EvalConfig cfg = load_eval_config(kConfig, {});
  const nlohmann::json want = torch_accuracy()["accuracy"];
  const auto backend = make_backend("cpu", 0, "test");
  for (const std::string& task : cfg.tasks) {
    const auto expert = open_checkpoint(kZoo + "experts/" + task);
    const std::vector<TaskAccuracy> got = eval_counts(cfg, *expert, "test", {task}, *backend, 0, 1);
    ASSERT_EQ(got.size(), 1u);
    const double torch_pct = 100.0 * want[task]["test"]["expert"].get<double>();
    EXPECT_EQ(got[0].images, 512u) << task;
    EXPECT_NEAR(got[0].percent(), torch_pct, 0.1) << task;
  }
}

// The floor: the pre-trained backbone with each task's head, on every task's test split at once.
TEST(Eval, BaseReproducesTorchAccuracy) {
  const EvalConfig cfg = load_eval_config(kConfig, {});
  const nlohmann::json want = torch_accuracy()["accuracy"];
  const auto backend = make_backend("cpu", 0, "test");
  const auto base = open_checkpoint(kZoo + "base");
  const std::vector<TaskAccuracy> got = eval_counts(cfg, *base, "test", cfg.tasks, *backend, 0, 1);
  ASSERT_EQ(got.size(), cfg.tasks.size());
  for (const auto& a : got) EXPECT_NEAR(a.percent(), 100.0 * want[a.task]["test"]["base"].get<double>(), 0.1) << a.task;
}

// Rank r takes batches r, r + size, ...: the shares add up to the single-rank counts for any size.
TEST(Eval, RankSharesAddUpToTheWholeSet) {
  EvalConfig cfg = load_eval_config(kConfig, {"eval.batch=48"});
  const auto backend = make_backend("cpu", 0, "test");
  const std::string task = cfg.tasks.front();
  const auto expert = open_checkpoint(kZoo + "experts/" + task);
  const TaskAccuracy whole = eval_counts(cfg, *expert, "val", {task}, *backend, 0, 1).at(0);
  for (int size : {2, 3}) {
    uint64_t images = 0, correct = 0;
    for (int rank = 0; rank < size; ++rank) {
      const TaskAccuracy part = eval_counts(cfg, *expert, "val", {task}, *backend, rank, size).at(0);
      images += part.images;
      correct += part.correct;
    }
    EXPECT_EQ(images, whole.images) << size;
    EXPECT_EQ(correct, whole.correct) << size;
  }
}

TEST(Eval, CommandPrintsAndWritesCsvAndJson) {
  test::ScratchDir dir;
  const std::string prefix = (dir / "digits-val").string();
  SoloCommunicator comm;
  testing::internal::CaptureStdout();
  const int code = eval_command({kConfig, "--model", kZoo + "experts/digits", "--split", "val", "--task", "digits",
                                 "--out", prefix},
                                comm);
  const std::string out = testing::internal::GetCapturedStdout();
  EXPECT_EQ(code, 0);
  EXPECT_NE(out.find("split val"), std::string::npos) << out;
  EXPECT_NE(out.find("average"), std::string::npos) << out;
  std::ifstream js(prefix + ".json");
  const nlohmann::json j = nlohmann::json::parse(js);
  ASSERT_EQ(j["tasks"].size(), 1u);
  EXPECT_EQ(j["tasks"][0]["task"], "digits");
  EXPECT_EQ(j["tasks"][0]["images"], 256);
  EXPECT_NEAR(j["average"].get<double>(), 100.0 * torch_accuracy()["accuracy"]["digits"]["val"]["expert"].get<double>(),
              0.1);
  std::ifstream csv(prefix + ".csv");
  std::string header;
  std::getline(csv, header);
  EXPECT_EQ(header, "task,split,images,correct,accuracy");
}

TEST(Eval, BadInputIsOneLineNamingTheCulprit) {
  test::ScratchDir dir;
  SoloCommunicator comm;
  const std::string digits = kZoo + "experts/digits";
  EXPECT_NE(error_of([&] { eval_command({kConfig}, comm); }).find("--model"), std::string::npos);
  EXPECT_NE(error_of([&] { eval_command({kConfig, "--model", digits, "--split", "train"}, comm); }).find("--split"),
            std::string::npos);
  EXPECT_NE(error_of([&] { eval_command({kConfig, "--model", digits, "--task", "nope"}, comm); }).find("'nope'"),
            std::string::npos);
  EXPECT_NE(error_of([&] { eval_command({kConfig, "--model", digits, "--set", "eval.colour=1"}, comm); })
                .find("eval.colour: unknown key"),
            std::string::npos);
  const std::string bare = (dir / "bare.yaml").string();
  std::ofstream(bare) << "experts: [{name: a, path: x}]\n";
  EXPECT_NE(error_of([&] { load_eval_config(bare, {}); }).find("eval: missing section"), std::string::npos);
  // A head that is not on the pooled output (wrong width), and a task the data file lacks.
  const std::string heads = (dir / "heads.safetensors").string();
  test::write_safetensors(heads, {{"digits.weight", {10, 7}, std::vector<float>(70, 0.0f)},
                                  {"digits.bias", {10}, std::vector<float>(10, 0.0f)},
                                  {"ghost.weight", {2, 192}, std::vector<float>(384, 0.0f)},
                                  {"ghost.bias", {2}, std::vector<float>(2, 0.0f)}});
  const EvalConfig cfg = load_eval_config(kConfig, {"eval.heads=" + heads});
  const auto backend = make_backend("cpu", 1, "test");
  const auto expert = open_checkpoint(digits);
  const std::string wrong_width = error_of([&] { eval_counts(cfg, *expert, "val", {"digits"}, *backend, 0, 1); });
  EXPECT_NE(wrong_width.find("digits.weight has shape [10, 7]"), std::string::npos) << wrong_width;
  const std::string no_data = error_of([&] { eval_counts(cfg, *expert, "val", {"ghost"}, *backend, 0, 1); });
  EXPECT_NE(no_data.find("no 'ghost' in the file"), std::string::npos) << no_data;
  EXPECT_EQ(no_data.find('\n'), std::string::npos) << no_data;
}

// Qwen2 on padded sequences: the head's predictions on transformers' pooled output (the last real token)
// are the labels of 3 of the 4 sequences, whatever the batch size or rank count.
TEST(Eval, TokenModelScoresItsLastRealTokens) {
  const std::string fixtures = test::fixtures_dir().string() + "/";
  const test::ScratchDir dir;
  const std::string config = (dir / "eval.yaml").string();
  std::ofstream(config) << "model: {arch: llama, base: x}\nexperts: [{name: padded, path: x}]\neval: {heads: " << fixtures
                        << "eval/qwen2_heads.safetensors, data: " << fixtures << "eval/qwen2_eval.h5, batch: 3}\n";
  const EvalConfig cfg = load_eval_config(config, {});
  EXPECT_EQ(cfg.arch, "llama");
  const auto backend = make_backend("cpu", 1, "test");
  const auto model = open_checkpoint(fixtures + "qwen2/expert1");
  const TaskAccuracy all = eval_counts(cfg, *model, "test", {"padded"}, *backend, 0, 1).at(0);
  EXPECT_EQ(all.images, 4u);
  EXPECT_EQ(all.correct, 3u);
  const TaskAccuracy first = eval_counts(cfg, *model, "test", {"padded"}, *backend, 0, 2).at(0);
  const TaskAccuracy second = eval_counts(cfg, *model, "test", {"padded"}, *backend, 1, 2).at(0);
  EXPECT_EQ(first.images + second.images, 4u);
  EXPECT_EQ(first.correct + second.correct, 3u);
}

}  // namespace
}  // namespace cm
