// `catmerge inspect`: roles, stages and sites of both CLIP namings, and a clear error for a non-model.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>

#include "test_support.hpp"

namespace cm {
namespace {

using test::fixtures_dir;

bool has_row(const std::string& out, const std::string& pattern) {
  return std::regex_search(out, std::regex(pattern));
}

TEST(Inspect, HuggingFaceNames) {
  const auto r = test::run_catmerge({"inspect", (fixtures_dir() / "clip_hf/base").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has_row(r.out, R"(layers\.0\.self_attn\.q_proj\.weight +F32 +\[32, 32\] +linear +1 +layers\.0\.attn_in)"));
  EXPECT_TRUE(has_row(r.out, R"(layers\.1\.mlp\.fc2\.weight +F32 +\[32, 64\] +linear +2 +layers\.1\.mlp_act)"));
  EXPECT_TRUE(has_row(r.out, R"(pre_layrnorm\.weight +F32 +\[32\] +norm_scale +0 +embed\.pre_ln)"));
  EXPECT_TRUE(has_row(r.out, R"(post_layernorm\.bias +F32 +\[32\] +shift +3 +-)"));
  EXPECT_TRUE(has_row(r.out, R"(visual_projection\.weight +F32 +\[16, 32\] +other +3)"));
  EXPECT_TRUE(has_row(r.out, "architecture: clip_vit"));
  // The model's order, not the file's (sorted by name there): METHODS.md orders TIES's ties by this listing.
  const size_t pre = r.out.find("pre_layrnorm.weight"), layer0 = r.out.find("layers.0.self_attn.q_proj.weight"),
               layer1 = r.out.find("layers.1.self_attn.q_proj.weight"), post = r.out.find("post_layernorm.weight");
  ASSERT_NE(post, std::string::npos);
  EXPECT_LT(pre, layer0);
  EXPECT_LT(layer0, layer1);
  EXPECT_LT(layer1, post);
}

TEST(Inspect, OpenClipFusedAttention) {
  const auto r = test::run_catmerge({"inspect", (fixtures_dir() / "clip_openclip/base.safetensors").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has_row(r.out, R"(resblocks\.1\.attn\.in_proj_weight +F32 +\[96, 32\] +linear +2 +layers\.1\.attn_in)"));
  EXPECT_TRUE(has_row(r.out, R"(resblocks\.1\.attn\.in_proj_bias +F32 +\[96\] +shift)"));
  EXPECT_TRUE(has_row(r.out, R"(visual\.proj +F32 +\[32, 16\] +other)"));
}

TEST(Inspect, NotAModel) {
  const test::ScratchDir dir;
  std::ofstream(dir / "notes.txt") << "hello";
  const auto r = test::run_catmerge({"inspect", (dir / "notes.txt").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find((dir / "notes.txt").string()), std::string::npos) << r.err;
}

}  // namespace
}  // namespace cm
