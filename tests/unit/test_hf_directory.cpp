// The files around the shards of a HuggingFace output: what is copied from the base, config.json's dtype,
// the index, the sizes a user gives, and which existing directories a commit may replace.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/hf_directory.hpp"
#include "job/config.hpp"
#include "test_support.hpp"

namespace cm {
namespace {

namespace fs = std::filesystem;

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

TEST(HfDirectory, CopiesEveryNonWeightFileAndNothingHidden) {
  const test::ScratchDir base, out;
  write(base / "config.json", "{}");
  write(base / "tokenizer.json", "{\"model\": 1}");
  write(base / "generation_config.json", "{\"do_sample\": true}");
  write(base / "chat_template.jinja", "{{ messages }}");
  write(base / "1_Pooling/config.json", "{\"pooling_mode_mean_tokens\": true}");
  write(base / ".gitattributes", "*.bin lfs");
  write(base / ".cache/huggingface/x", "y");
  for (const char* weights : {"model.safetensors", "model-00001-of-00002.safetensors", "model.safetensors.index.json",
                              "pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5", "flax_model.msgpack"})
    write(base / weights, "weights");
  write(base / "blobs/real-tokenizer-config", "{\"a\": 2}");
  fs::create_symlink(base / "blobs/real-tokenizer-config", base / "tokenizer_config.json");
  copy_base_files(base.path().string(), out.path().string());
  EXPECT_EQ(test::list_dir(out.path()),
            (std::vector<std::string>{"1_Pooling", "blobs", "chat_template.jinja", "generation_config.json",
                                      "tokenizer.json", "tokenizer_config.json"}));
  EXPECT_EQ(test::file_bytes(out / "1_Pooling/config.json"), "{\"pooling_mode_mean_tokens\": true}");
  EXPECT_FALSE(fs::is_symlink(out / "tokenizer_config.json"));
  EXPECT_EQ(test::file_bytes(out / "tokenizer_config.json"), "{\"a\": 2}");
}

TEST(HfDirectory, LeavesOutputsInsideTheBaseOut) {
  const test::ScratchDir base;
  write(base / "tokenizer.json", "{}");
  write(base / "earlier/model.safetensors.index.json", R"({"metadata": {"catmerge_version": "0.1.0"}, "weight_map": {}})");
  write(base / "earlier/tokenizer.json", "{}");
  write(base / "merged.tmp-7/config.json", "{}");
  copy_base_files(base.path().string(), (base / "merged.tmp-7").string());
  EXPECT_EQ(test::list_dir(base / "merged.tmp-7"), (std::vector<std::string>{"config.json", "tokenizer.json"}));
}

TEST(HfDirectory, ConfigNamesTheOutputDtypeWhereTheBaseNamesOne) {
  const test::ScratchDir out;
  write_hf_config(R"({"architectures": ["CLIPModel"], "dtype": "float32",
                      "text_config": {"dtype": "float32", "hidden_size": 8}, "vision_config": {"hidden_size": 8}})",
                  DType::BF16, "base/config.json", out.path().string());
  const nlohmann::json c = nlohmann::json::parse(test::file_bytes(out / "config.json"));
  EXPECT_EQ(c["torch_dtype"], "bfloat16");
  EXPECT_EQ(c["dtype"], "bfloat16");
  EXPECT_EQ(c["text_config"]["dtype"], "bfloat16");
  EXPECT_FALSE(c["vision_config"].contains("dtype"));
  EXPECT_EQ(c["architectures"][0], "CLIPModel");
  EXPECT_EQ(test::error_of([&] { write_hf_config("[1]", DType::F32, "base/config.json", out.path().string()); }),
            "base/config.json: not a JSON object");
}

TEST(HfDirectory, AnOpenClipConfigGoesUnchangedUnderItsOwnName) {
  const test::ScratchDir out;
  const std::string text = R"({"model_cfg": {"embed_dim": 16}, "preprocess_cfg": {}})";
  write_hf_config(text, DType::F16, "base/open_clip_config.json", out.path().string());
  EXPECT_EQ(test::list_dir(out.path()), (std::vector<std::string>{"open_clip_config.json"}));
  EXPECT_EQ(test::file_bytes(out / "open_clip_config.json"), text);
}

TEST(HfDirectory, IndexMapsEveryTensorToItsShard) {
  const test::ScratchDir out;
  const std::vector<StoredTensor> t = {{"b", "F32", {2}, 8}, {"a", "F16", {2}, 4}};
  const ShardLayout l = plan_shards(t, {0, 1}, 2, 100);
  write_hf_index(l, t, {{"method", "ties"}}, out.path().string());
  const nlohmann::json index = nlohmann::json::parse(test::file_bytes(out / "model.safetensors.index.json"));
  EXPECT_EQ(index["metadata"]["total_size"], 12);
  EXPECT_EQ(index["metadata"]["method"], "ties");
  EXPECT_EQ(index["weight_map"]["b"], "model-00001-of-00002.safetensors");
  EXPECT_EQ(index["weight_map"]["a"], "model-00002-of-00002.safetensors");
}

TEST(HfDirectory, ReplacesOnlyEmptyDirectoriesAndEarlierOutputs) {
  const test::ScratchDir dir;
  const std::string final_dir = (dir / "merged").string();
  EXPECT_EQ(test::error_of([&] { check_hf_output_path(final_dir); }), "(no error)");
  write(dir / "merged/notes.txt", "mine");
  EXPECT_EQ(test::error_of([&] { check_hf_output_path(final_dir); }),
            final_dir + ": output.path is a directory that is not an earlier catmerge output; remove it or choose "
                        "another path");
  write(dir / "file.h5", "x");
  EXPECT_EQ(test::error_of([&] { check_hf_output_path((dir / "file.h5").string()); }),
            (dir / "file.h5").string() + ": output.path exists and is not a directory; a safetensors output is a directory");

  // An earlier output is replaced whole by the new one.
  fs::remove_all(dir / "merged");
  write(dir / "merged/model.safetensors.index.json", R"({"metadata": {"catmerge_version": "0.1.0"}, "weight_map": {}})");
  write(dir / "merged/stale.safetensors", "old");
  const std::string temp = hf_temp_dir(final_dir + "/", 42);
  EXPECT_EQ(temp, final_dir + ".tmp-42");
  write(fs::path(temp) / "config.json", "{}");
  commit_hf_directory(temp, final_dir);
  EXPECT_EQ(test::list_dir(dir.path()), (std::vector<std::string>{"file.h5", "merged"}));
  EXPECT_EQ(test::list_dir(dir / "merged"), (std::vector<std::string>{"config.json"}));
}

TEST(ByteSize, TakesHuggingFaceUnits) {
  EXPECT_EQ(parse_byte_size("5GB", "k"), 5'000'000'000u);
  EXPECT_EQ(parse_byte_size("500MB", "k"), 500'000'000u);
  EXPECT_EQ(parse_byte_size("2GiB", "k"), uint64_t{2} << 30);
  EXPECT_EQ(parse_byte_size("1.5KiB", "k"), 1536u);
  EXPECT_EQ(parse_byte_size("20KB", "k"), 20'000u);
  EXPECT_EQ(parse_byte_size("4096", "k"), 4096u);
  EXPECT_EQ(parse_byte_size("4096B", "k"), 4096u);
  for (const char* bad : {"", "GB", "0", "-1GB", "5 GB", "5XB", "1e30", "nanGB"})
    EXPECT_EQ(test::error_of([&] { parse_byte_size(bad, "m.yaml: output.shard_size"); }),
              std::string("m.yaml: output.shard_size: expected a size such as 5GB, 500MB, 2GiB or a number of bytes, got '") +
                  bad + "'")
        << bad;
}

}  // namespace
}  // namespace cm
