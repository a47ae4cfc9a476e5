// open_checkpoint on every container: a sharded HuggingFace directory, a single file with the config
// beside it, an h5py-written catmerge-style HDF5 file, and the ways a directory or index can be broken.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.hpp"
#include "io/checkpoint.hpp"
#include "test_support.hpp"

namespace cm {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::string fixture(const std::string& name) { return (test::fixtures_dir() / "io" / name).string(); }

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> names_of(const Checkpoint& ck) {
  std::vector<std::string> names;
  for (const TensorInfo& t : ck.tensors()) names.push_back(t.name);
  return names;
}

std::string open_error(const std::string& path) {
  try {
    open_checkpoint(path);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "opened without error: " << path;
  return "";
}

TEST(Checkpoint, ShardedDirectory) {
  const std::string dir = fixture("sharded");
  const auto ck = open_checkpoint(dir);
  const std::string shard1 = (fs::path(dir) / "model-00001-of-00002.safetensors").string();
  const std::string shard2 = (fs::path(dir) / "model-00002-of-00002.safetensors").string();
  EXPECT_EQ(ck->path(), dir);
  EXPECT_EQ(names_of(*ck), (std::vector<std::string>{"layer0.bias", "layer0.weight", "layer1.weight", "layer1.bias"}));
  EXPECT_EQ(ck->find("layer1.weight")->dtype, DType::BF16);
  EXPECT_EQ(ck->find("layer1.bias")->dtype, DType::F16);
  EXPECT_EQ(ck->find("layer0.weight")->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(ck->find("embeddings.position_ids"), nullptr);  // I64: listed in the file, not a float tensor
  EXPECT_EQ(ck->find("nope"), nullptr);
  EXPECT_EQ(ck->read("layer0.weight"), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(ck->read("layer1.weight"), (std::vector<float>{-1.5f, -0.5f, 0.5f, 1.5f}));
  EXPECT_EQ(ck->read("layer1.bias"), (std::vector<float>{1, 2}));
  EXPECT_EQ(ck->file_of("layer0.bias"), shard1);
  EXPECT_EQ(ck->file_of("layer1.bias"), shard2);
  EXPECT_EQ(ck->files(),
            (std::vector<std::string>{(fs::path(dir) / "config.json").string(),
                                      (fs::path(dir) / "model.safetensors.index.json").string(), shard1, shard2}));
  EXPECT_EQ(ck->config_json(), slurp(dir + "/config.json"));
  try {
    ck->read("embeddings.position_ids");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr(shard1), HasSubstr("embeddings.position_ids"), HasSubstr("I64")));
  }
  try {
    ck->read("nope");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr(dir), HasSubstr("'nope'")));
  }
}

TEST(Checkpoint, SingleFileTakesTheConfigBesideIt) {
  const std::string file = fixture("single/model.safetensors");
  const std::string config = fixture("single/open_clip_config.json");
  for (const std::string& path : {file, fixture("single")}) {
    const auto ck = open_checkpoint(path);
    EXPECT_EQ(names_of(*ck), std::vector<std::string>{"visual.proj"}) << path;
    EXPECT_EQ(ck->read("visual.proj"), std::vector<float>(4, 1.0f)) << path;
    EXPECT_EQ(ck->config_json(), slurp(config)) << path;
    EXPECT_EQ(ck->files(), (std::vector<std::string>{config, file})) << path;
    EXPECT_EQ(ck->file_of("visual.proj"), file);
  }
}

TEST(Checkpoint, FileWithoutConfigHasEmptyConfig) {
  const auto ck = open_checkpoint(fixture("dtypes.safetensors"));
  EXPECT_EQ(ck->config_json(), "");
  EXPECT_EQ(ck->files(), std::vector<std::string>{fixture("dtypes.safetensors")});
}

TEST(Checkpoint, Hdf5WrittenByH5py) {
  const std::string file = fixture("catmerge_style.h5");
  const auto ck = open_checkpoint(file);
  // Only float32, IEEE half and bfloat16-marked uint16 datasets are tensors; h5py lists them by name.
  EXPECT_EQ(names_of(*ck), (std::vector<std::string>{"a.weight", "b.weight", "c.bias", "d.bias"}));
  EXPECT_EQ(ck->find("a.weight")->dtype, DType::F32);
  EXPECT_EQ(ck->find("b.weight")->dtype, DType::F16);
  EXPECT_EQ(ck->find("c.bias")->dtype, DType::BF16);
  EXPECT_EQ(ck->find("d.bias")->dtype, DType::BF16);
  EXPECT_EQ(ck->find("a.weight")->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(ck->read("a.weight"), (std::vector<float>{1, -2, 0.5f, 0.25f, 3, -4}));
  EXPECT_EQ(ck->read("b.weight"), (std::vector<float>{1.5f, -0.125f, 65504.0f, std::ldexp(1.0f, -24)}));
  EXPECT_EQ(ck->read("c.bias"), (std::vector<float>{1.0f, -2.5f, std::ldexp(1.0f, -128)}));
  EXPECT_EQ(ck->read("d.bias"), std::vector<float>{3.0f});
  EXPECT_EQ(ck->config_json(), R"({"model_type": "toy"})");
  EXPECT_EQ(ck->files(), std::vector<std::string>{file});
  EXPECT_EQ(ck->file_of("a.weight"), file);
  for (const char* absent : {"plain_u16", "steps", "fisher64", "meta"}) {
    EXPECT_EQ(ck->find(absent), nullptr) << absent;
    try {
      ck->read(absent);
      FAIL() << absent;
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), AllOf(HasSubstr(file), HasSubstr(absent)));
    }
  }
}

TEST(Checkpoint, Hdf5IsRecognisedBySignature) {
  const test::ScratchDir dir;
  const std::string copy = (dir / "weights.bin").string();
  fs::copy_file(fixture("catmerge_style.h5"), copy);
  EXPECT_EQ(open_checkpoint(copy)->tensors().size(), 4u);
}

TEST(Checkpoint, NotACheckpoint) {
  const test::ScratchDir dir;
  EXPECT_EQ(open_error((dir / "missing").string()), (dir / "missing").string() + ": no such file or directory");
  std::ofstream(dir / "notes.txt") << "hello";
  EXPECT_EQ(
      open_error((dir / "notes.txt").string()),
      (dir / "notes.txt").string() + ": not a safetensors file, HuggingFace model directory, catmerge HDF5 file or shape file");
  EXPECT_THAT(open_error(dir.path().string()), AllOf(HasSubstr(dir.path().string()), HasSubstr("model.safetensors")));
  std::ofstream(dir / "bad.h5") << "not hdf5";
  EXPECT_THAT(open_error((dir / "bad.h5").string()), HasSubstr((dir / "bad.h5").string()));
  std::ofstream(dir / "bad.safetensors") << "x";
  EXPECT_THAT(open_error((dir / "bad.safetensors").string()), HasSubstr((dir / "bad.safetensors").string()));
}

// A scratch copy of the sharded fixture whose index can be damaged.
class CheckpointBrokenIndex : public ::testing::Test {
 protected:
  CheckpointBrokenIndex() { fs::copy(fixture("sharded"), model_); }
  void write_index(const std::string& text) { std::ofstream(model_ / "model.safetensors.index.json") << text; }
  std::string index_with(const std::string& entries) { return R"({"weight_map": {)" + entries + "}}"; }
  std::string shard(int i) const {
    return (model_ / ("model-0000" + std::to_string(i) + "-of-00002.safetensors")).string();
  }

  test::ScratchDir dir_;
  const fs::path model_ = dir_ / "model";
  const std::string all_ = R"("embeddings.position_ids": "model-00001-of-00002.safetensors",
      "layer0.bias": "model-00001-of-00002.safetensors", "layer0.weight": "model-00001-of-00002.safetensors",
      "layer1.bias": "model-00002-of-00002.safetensors", "layer1.weight": "model-00002-of-00002.safetensors")";
};

TEST_F(CheckpointBrokenIndex, CopyOpens) {
  write_index(index_with(all_));
  EXPECT_EQ(open_checkpoint(model_.string())->tensors().size(), 4u);
}

TEST_F(CheckpointBrokenIndex, MissingShard) {
  fs::remove(shard(2));
  EXPECT_THAT(open_error(model_.string()), AllOf(HasSubstr(shard(2)), HasSubstr("does not exist")));
}

TEST_F(CheckpointBrokenIndex, TensorMissingFromItsShard) {
  write_index(index_with(all_ + R"(, "ghost.weight": "model-00002-of-00002.safetensors")"));
  EXPECT_THAT(open_error(model_.string()), AllOf(HasSubstr(shard(2)), HasSubstr("'ghost.weight'")));
}

TEST_F(CheckpointBrokenIndex, ShardHoldsAnUnlistedTensor) {
  write_index(index_with(R"("layer0.bias": "model-00001-of-00002.safetensors",
      "layer0.weight": "model-00001-of-00002.safetensors")"));
  EXPECT_THAT(open_error(model_.string()), AllOf(HasSubstr(shard(1)), HasSubstr("'embeddings.position_ids'")));
}

TEST_F(CheckpointBrokenIndex, TensorAssignedToAnotherShard) {
  write_index(index_with(R"("embeddings.position_ids": "model-00001-of-00002.safetensors",
      "layer0.bias": "model-00002-of-00002.safetensors")"));
  EXPECT_THAT(open_error(model_.string()), AllOf(HasSubstr(shard(1)), HasSubstr("'layer0.bias'")));
}

TEST_F(CheckpointBrokenIndex, TensorInTwoShards) {
  fs::copy_file(shard(1), shard(2), fs::copy_options::overwrite_existing);
  EXPECT_THAT(open_error(model_.string()), AllOf(HasSubstr(shard(2)), HasSubstr("' is also in " + shard(1))));
}

TEST_F(CheckpointBrokenIndex, MalformedIndex) {
  const std::string index = (model_ / "model.safetensors.index.json").string();
  write_index("{");
  EXPECT_THAT(open_error(model_.string()), AllOf(HasSubstr(index), HasSubstr("JSON")));
  write_index(R"({"metadata": {}})");
  EXPECT_THAT(open_error(model_.string()), AllOf(HasSubstr(index), HasSubstr("weight_map")));
  write_index(index_with(R"("layer0.bias": 3)"));
  EXPECT_THAT(open_error(model_.string()), AllOf(HasSubstr(index), HasSubstr("'layer0.bias'")));
  write_index(index_with(R"("layer0.bias": "../model-00001-of-00002.safetensors")"));
  EXPECT_THAT(open_error(model_.string()), AllOf(HasSubstr(index), HasSubstr("not a file name")));
}

TEST_F(CheckpointBrokenIndex, CorruptShardIsNamed) {
  std::ofstream(shard(2), std::ios::binary | std::ios::trunc) << "short";
  EXPECT_THAT(open_error(model_.string()), AllOf(HasSubstr(shard(2)), HasSubstr("too short")));
}

TEST_F(CheckpointBrokenIndex, SingleModelFileWinsOverIndex) {
  fs::copy_file(fixture("single/model.safetensors"), model_ / "model.safetensors");
  const auto ck = open_checkpoint(model_.string());
  EXPECT_EQ(names_of(*ck), std::vector<std::string>{"visual.proj"});
  EXPECT_EQ(ck->config_json(), slurp((model_ / "config.json").string()));
}

}  // namespace
}  // namespace cm
