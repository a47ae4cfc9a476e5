// catmerge eval on the committed zoo (data/zoo, made by tools/zoo/make_zoo.py): each unmerged expert on
// its own task's test split must reproduce the accuracy that the zoo script measured in torch
// (data/zoo/expert_accuracy.json) to 0.1 percentage point, which checks the forward pass, the heads and the
// pixel conversion end to end; the split over ranks must add up to the whole set; bad input is one line.
// A token model (data/fixtures/eval, made by tools/reference: labels against transformers' pooled output)
// goes through the same command. One EvalScorer scores several models on the data it read once, and its
// FLOP count is the hand count of the products.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "arch/clip_vit.hpp"
#include "arch/llama.hpp"
#include "arch/registry.hpp"
#include "backend/backend.hpp"
#include "comm/communicator.hpp"
#include "common/error.hpp"
#include "features/clip_forward.hpp"
#include "features/llama_forward.hpp"
#include "io/checkpoint.hpp"
#include "job/eval.hpp"
#include "job/eval_config.hpp"
#include "job/eval_score.hpp"
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

// This rank's counts of one model, as eval_command computes them.
std::vector<TaskAccuracy> counts_of(const EvalConfig& cfg, const Checkpoint& model, const std::string& split,
                                    const std::vector<std::string>& tasks, Backend& backend, int rank = 0,
                                    int size = 1) {
  EvalScorer scorer(cfg, describe_model(cfg.arch, model), backend, tasks, split, rank, size);
  return scorer.counts(checkpoint_weights(model));
}

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
    const std::vector<TaskAccuracy> got = counts_of(cfg, *expert, "test", {task}, *backend);
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
  const std::vector<TaskAccuracy> got = counts_of(cfg, *base, "test", cfg.tasks, *backend);
  ASSERT_EQ(got.size(), cfg.tasks.size());
  for (const auto& a : got) EXPECT_NEAR(a.percent(), 100.0 * want[a.task]["test"]["base"].get<double>(), 0.1) << a.task;
}

// Rank r takes batches r, r + size, ...: the shares add up to the single-rank counts for any size.
TEST(Eval, RankSharesAddUpToTheWholeSet) {
  EvalConfig cfg = load_eval_config(kConfig, {"eval.batch=48"});
  const auto backend = make_backend("cpu", 0, "test");
  const std::string task = cfg.tasks.front();
  const auto expert = open_checkpoint(kZoo + "experts/" + task);
  const TaskAccuracy whole = counts_of(cfg, *expert, "val", {task}, *backend).at(0);
  for (int size : {2, 3}) {
    uint64_t images = 0, correct = 0;
    for (int rank = 0; rank < size; ++rank) {
      const TaskAccuracy part = counts_of(cfg, *expert, "val", {task}, *backend, rank, size).at(0);
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
  const std::string wrong_width = error_of([&] { counts_of(cfg, *expert, "val", {"digits"}, *backend); });
  EXPECT_NE(wrong_width.find("digits.weight has shape [10, 7]"), std::string::npos) << wrong_width;
  const std::string no_data = error_of([&] { counts_of(cfg, *expert, "val", {"ghost"}, *backend); });
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
  const TaskAccuracy all = counts_of(cfg, *model, "test", {"padded"}, *backend).at(0);
  EXPECT_EQ(all.images, 4u);
  EXPECT_EQ(all.correct, 3u);
  const TaskAccuracy first = counts_of(cfg, *model, "test", {"padded"}, *backend, 0, 2).at(0);
  const TaskAccuracy second = counts_of(cfg, *model, "test", {"padded"}, *backend, 1, 2).at(0);
  EXPECT_EQ(first.images + second.images, 4u);
  EXPECT_EQ(first.correct + second.correct, 3u);
}

// One scorer, the data read once (the file is gone before the first model is scored), several models:
// the base on both tasks and each expert on its own task give the torch accuracies, and a model scored
// again gives the same counts.
TEST(Eval, OneScorerScoresManyModelsOnDataReadOnce) {
  const test::ScratchDir dir;
  const std::string data = (dir / "eval.h5").string();
  std::filesystem::copy_file(kZoo + "eval.h5", data);
  const EvalConfig cfg = load_eval_config(kConfig, {"eval.data=" + data});
  const nlohmann::json want = torch_accuracy()["accuracy"];
  const auto backend = make_backend("cpu", 0, "test");
  const auto base = open_checkpoint(kZoo + "base");
  const std::vector<std::string> tasks = {"digits", "letters"};
  EvalScorer scorer(cfg, describe_model(cfg.arch, *base), *backend, tasks, "val", 0, 1);
  std::filesystem::remove(data);
  SoloCommunicator comm;
  const std::vector<TaskAccuracy> first = score_model(scorer, checkpoint_weights(*base), comm);
  ASSERT_EQ(first.size(), 2u);
  for (size_t t = 0; t < tasks.size(); ++t) {
    EXPECT_EQ(first[t].task, tasks[t]);
    EXPECT_EQ(first[t].images, 256u);
    EXPECT_NEAR(first[t].percent(), 100.0 * want[tasks[t]]["val"]["base"].get<double>(), 0.1) << tasks[t];
  }
  for (size_t t = 0; t < tasks.size(); ++t) {
    const auto expert = open_checkpoint(kZoo + "experts/" + tasks[t]);
    const TaskAccuracy got = scorer.counts(checkpoint_weights(*expert)).at(t);
    EXPECT_NEAR(got.percent(), 100.0 * want[tasks[t]]["val"]["expert"].get<double>(), 0.1) << tasks[t];
  }
  const std::vector<TaskAccuracy> again = scorer.counts(checkpoint_weights(*base));
  for (size_t t = 0; t < tasks.size(); ++t) EXPECT_EQ(again[t].correct, first[t].correct) << tasks[t];
}

// 2 m n k per matrix product of a tiny CLIP (hidden 8, 2 heads of 4, MLP 16, 2 blocks; 4x4 images of 3
// channels in 2x2 patches: 4 patches + CLS = 5 tokens) on 3 images, 15 token rows:
//   patch conv                 2 * (3 * 4) * 8 * (3 * 2 * 2)  =  2304
//   per block  q, k, v, out    4 * 2 * 15 * 8 * 8             =  7680
//              fc1, fc2        2 * 2 * 15 * 16 * 8            =  7680
//              QK^T, PV        2 * 2 * (3 * 2) * (5 * 5) * 4  =  2400
//   total                      2304 + 2 * 17760               = 37824
TEST(Eval, ForwardFlopsOfATinyClipByHand) {
  ClipVisionConfig cfg;
  cfg.hidden = 8, cfg.layers = 2, cfg.heads = 2, cfg.intermediate = 16;
  cfg.image_size = 4, cfg.patch_size = 2, cfg.channels = 3;
  cfg.names.blocks.resize(2);
  const auto backend = make_backend("cpu", 1, "test");
  Exemplars x;
  x.kind = InputKind::Images;
  x.n = 3, x.channels = 3, x.height = 4, x.width = 4;
  EXPECT_EQ(ClipForward(cfg, *backend).matmul_flops(x), 37824.0);
}

// The same for a tiny grouped-query llama (hidden 8, 2 query heads and 1 key/value head of 4, MLP 12,
// 1 block) on 2 sequences of 3 tokens, padding included: 6 token rows.
//   q, o_proj         2 * 2 * 6 * 8 * 8              =  1536
//   k, v              2 * 2 * 6 * 4 * 8              =   768
//   gate, up, down    3 * 2 * 6 * 12 * 8             =  3456
//   QK^T, PV          2 * 2 * (2 * 2) * (3 * 3) * 4  =   576
//   total                                               6336
TEST(Eval, ForwardFlopsOfATinyLlamaByHand) {
  LlamaConfig cfg;
  cfg.hidden = 8, cfg.layers = 1, cfg.intermediate = 12, cfg.vocab = 10;
  cfg.heads = 2, cfg.kv_heads = 1, cfg.head_dim = 4;
  cfg.window = {0};
  cfg.blocks.resize(1);
  const auto backend = make_backend("cpu", 1, "test");
  Exemplars x;
  x.kind = InputKind::Tokens;
  x.n = 2, x.length = 3;
  x.ids = {1, 2, 3, 4, 5, 0};
  x.mask = {1, 1, 1, 1, 1, 0};
  EXPECT_EQ(LlamaForward(cfg, *backend).matmul_flops(x), 6336.0);
}

}  // namespace
}  // namespace cm
