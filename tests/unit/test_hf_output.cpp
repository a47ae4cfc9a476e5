// The safetensors output end to end through the catmerge binary: the merged tensors equal the HDF5 output
// of the same merge byte for byte, on 1 to 4 ranks under Open MPI; the base's other tensors are copied; an
// export of the HDF5 output gives the run's shards; and a failed merge leaves no directory.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/checkpoint.hpp"
#include "test_support.hpp"

namespace cm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

uint32_t bits(float v) {
  uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

// Every tensor of `want` is in `got` with its dtype and shape and the same stored bytes: both stores are 16- or
// 32-bit floats read exactly into float32, so equal float32 bits are equal bytes.
void expect_same_tensors(const Checkpoint& got, const Checkpoint& want) {
  for (const TensorInfo& w : want.tensors()) {
    SCOPED_TRACE(w.name);
    const TensorInfo* g = got.find(w.name);
    ASSERT_NE(g, nullptr) << "missing from " << got.path();
    EXPECT_EQ(g->dtype, w.dtype);
    EXPECT_EQ(g->shape, w.shape);
    const std::vector<float> a = got.read(w.name), b = want.read(w.name);
    ASSERT_EQ(a.size(), b.size());
    size_t differ = 0;
    for (size_t i = 0; i < a.size(); ++i) differ += bits(a[i]) != bits(b[i]);
    EXPECT_EQ(differ, 0u) << "elements whose bytes differ";
  }
}

std::string write_config(const test::ScratchDir& dir, const std::string& name, const std::string& text) {
  const fs::path p = dir / (name + ".yaml");
  std::ofstream(p) << text;
  return p.string();
}

class HfOutputRanks : public ::testing::TestWithParam<std::string> {};

TEST_P(HfOutputRanks, EqualsTheHdf5OutputOnOneToFourRanks) {
  const json c = test::fixture_case(GetParam());
  ASSERT_FALSE(c.is_null());
  const test::ScratchDir dir;
  const std::string h5 = (dir / "merged.h5").string();
  const test::CliResult ref = test::run_catmerge({"run", write_config(dir, "h5", test::fixture_case_config(c["config"], h5))});
  ASSERT_EQ(ref.exit_code, 0) << ref.err;
  const auto want = open_checkpoint(h5);
  const auto base = open_checkpoint((test::fixtures_dir() / c["config"]["model"]["base"].get<std::string>()).string());
  for (int ranks = 1; ranks <= 4; ++ranks) {
    SCOPED_TRACE(std::to_string(ranks) + " ranks");
    const std::string out = (dir / ("merged-" + std::to_string(ranks))).string();
    // Small shards, so that every rank writes several.
    const std::string cfg = write_config(
        dir, "st" + std::to_string(ranks),
        test::fixture_case_config(c["config"], out, {{"format", "safetensors"}, {"shard_size", "6KB"}}));
    const test::CliResult r = ranks == 1 ? test::run_catmerge({"run", cfg}) : test::run_catmerge_mpi(ranks, {"run", cfg});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto got = open_checkpoint(out);
    expect_same_tensors(*got, *want);
    // Everything else is the base's, and nothing of the base is missing.
    for (const TensorInfo& t : got->tensors()) {
      if (!want->find(t.name)) {
        EXPECT_NE(base->find(t.name), nullptr) << t.name << " is neither merged nor the base's";
      }
    }
    EXPECT_EQ(got->tensors().size(), base->tensors().size());
    EXPECT_EQ(test::list_dir(dir.path()).size(), static_cast<size_t>(2 * ranks + 2)) << "a temporary left behind";
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, HfOutputRanks,
                         ::testing::Values("hf_cat", "llama_task_arithmetic", "mistral_cat", "qwen2_regmean"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST(HfOutput, CopiesTheBasesOtherTensorsAsStored) {
  // Exporting a checkpoint onto itself as the base: its integer and boolean tensors are copied byte for byte.
  const test::ScratchDir dir;
  const std::string src = (test::fixtures_dir() / "io/dtypes.safetensors").string();
  const std::string out = (dir / "out").string();
  const test::CliResult r = test::run_catmerge({"export", src, out, "--base", src});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto got = open_checkpoint(out), want = open_checkpoint(src);
  expect_same_tensors(*got, *want);
  ASSERT_EQ(got->other_tensors().size(), 2u);
  std::vector<int64_t> ids(6);
  got->read_stored("position_ids", 0, 48, ids.data());
  EXPECT_EQ(ids, (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  unsigned char mask[3] = {};
  got->read_stored("mask", 0, 3, mask);
  EXPECT_EQ(mask[0] + 2 * mask[1] + 4 * mask[2], 5);
}

TEST(HfOutput, ExportOfTheHdf5OutputGivesTheRunsShards) {
  const json c = test::fixture_case("llama_task_arithmetic");
  const test::ScratchDir dir;
  const std::string h5 = (dir / "merged.h5").string(), run = (dir / "run").string(), exported = (dir / "exported").string();
  ASSERT_EQ(test::run_catmerge({"run", write_config(dir, "a", test::fixture_case_config(c["config"], h5))}).exit_code, 0);
  ASSERT_EQ(test::run_catmerge({"run", write_config(dir, "b", test::fixture_case_config(c["config"], run,
                                                                                          {{"format", "safetensors"},
                                                                                           {"shard_size", "20KB"}}))})
                .exit_code,
            0);
  const std::string base = (test::fixtures_dir() / "llama/base").string();
  const test::CliResult r = test::run_catmerge({"export", h5, exported, "--base", base, "--shard-size", "20KB"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("catmerge: wrote " + exported, 0), 0u) << r.out;
  const std::vector<std::string> files = test::list_dir(run);
  EXPECT_EQ(test::list_dir(exported), files);
  size_t shards = 0;
  for (const std::string& f : files) {
    if (f.find(".safetensors") == std::string::npos || f.find(".json") != std::string::npos) continue;
    ++shards;
    EXPECT_EQ(test::file_bytes(fs::path(run) / f), test::file_bytes(fs::path(exported) / f)) << f;
  }
  EXPECT_GT(shards, 1u);
  for (const char* same : {"config.json", "generation_config.json"})
    EXPECT_EQ(test::file_bytes(fs::path(run) / same), test::file_bytes(fs::path(exported) / same)) << same;
  // The index records what made the weights.
  const json index = json::parse(test::file_bytes(fs::path(run) / "model.safetensors.index.json"));
  EXPECT_EQ(index["metadata"]["method"], "task_arithmetic");
  EXPECT_EQ(json::parse(index["metadata"]["hyperparameters"].get<std::string>())["alpha"], 0.4);
}

TEST(HfOutput, AFailedMergeLeavesNoDirectory) {
  const test::ScratchDir dir;
  // An expert with a NaN in its last tensor fails after most of the shards are written.
  auto tensors = test::read_all((test::fixtures_dir() / "clip_hf/expert2").string());
  tensors.back().values.back() = std::nanf("");
  test::write_safetensors(dir / "expert2.safetensors", tensors);
  const fs::path f = test::fixtures_dir();
  const std::string cfg = write_config(
      dir, "bad",
      "model: {arch: clip_vit, base: " + (f / "clip_hf/base").string() + "}\nexperts:\n  - {path: " +
          (f / "clip_hf/expert1").string() + "}\n  - {path: " + (dir / "expert2.safetensors").string() +
          "}\nmethod: {name: task_arithmetic}\noutput: {path: " + (dir / "merged").string() +
          ", format: safetensors, shard_size: 4KB}\n");
  for (int ranks : {1, 3}) {
    const test::CliResult r = ranks == 1 ? test::run_catmerge({"run", cfg}) : test::run_catmerge_mpi(ranks, {"run", cfg});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("task vector is NaN"), std::string::npos) << r.err;
    EXPECT_EQ(test::list_dir(dir.path()), (std::vector<std::string>{"bad.yaml", "expert2.safetensors"}));
  }
}

TEST(HfOutput, RefusesOutputsItMustNotWrite) {
  const test::ScratchDir dir;
  const json c = test::fixture_case("hf_task_arithmetic");
  const auto fails = [&](const json& output, const std::string& out) {
    const test::CliResult r = test::run_catmerge({"run", write_config(dir, "x", test::fixture_case_config(c["config"], out, output))});
    EXPECT_NE(r.exit_code, 0);
    return r.err;
  };
  EXPECT_NE(fails({{"format", "safetensors"}}, (dir / "m.h5").string())
                .find("output.format: safetensors writes a directory, but output.path names an HDF5 file"),
            std::string::npos);
  EXPECT_NE(fails({{"shard_size", "1GB"}}, (dir / "m.h5").string()).find("output.shard_size: only format: safetensors has shards"),
            std::string::npos);
  fs::create_directories(dir / "mine");
  std::ofstream(dir / "mine/keep.txt") << "keep";
  EXPECT_NE(fails({{"format", "safetensors"}}, (dir / "mine").string()).find("not an earlier catmerge output"),
            std::string::npos);
  EXPECT_EQ(test::file_bytes(dir / "mine/keep.txt"), "keep");
}

TEST(HfOutput, ExportNamesABaseThatDoesNotFit) {
  const test::ScratchDir dir;
  const std::string h5 = (test::fixtures_dir() / "expected/hf_task_arithmetic.h5").string();
  const test::CliResult r =
      test::run_catmerge({"export", h5, (dir / "out").string(), "--base", (test::fixtures_dir() / "llama/base").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not the base of that merge"), std::string::npos) << r.err;
  EXPECT_TRUE(test::list_dir(dir.path()).empty());
  const test::CliResult usage = test::run_catmerge({"export", h5});
  EXPECT_EQ(usage.err, "catmerge: error: export: expected MERGED.h5 OUT_DIR\n");
}

}  // namespace
}  // namespace cm
