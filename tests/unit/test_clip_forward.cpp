// The CLIP vision forward against the transformers oracle (tools/reference/make_fixtures.py): every
// feature site, the pooled output and the image embeddings of the first exemplars of task 1, for the
// same expert under HF names (separate q/k/v) and open_clip names (fused in_proj, transposed proj).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "arch/clip_vit.hpp"
#include "backend/backend.hpp"
#include "features/clip_forward.hpp"
#include "io/checkpoint.hpp"
#include "io/exemplars.hpp"

namespace cm {
namespace {

const std::string kFixtures = std::string(CATMERGE_SOURCE_DIR) + "/data/fixtures/";
constexpr int64_t kImages = 2;

// Keeps every site's raw rows so they can be compared with the oracle's.
class RowSink : public FeatureSink {
 public:
  bool wants(const std::string&) const override { return true; }
  void record(const std::string& site, SiteKind, const float* rows, int64_t n, int64_t dim) override {
    auto& r = rows_[site];
    r.rows.assign(rows, rows + n * dim);
    r.shape = {n, dim};
  }
  struct Rows {
    std::vector<float> rows;
    std::vector<int64_t> shape;
  };
  std::map<std::string, Rows> rows_;
};

// max|got - want| / max|want| against the oracle dataset of the same name and shape.
double rel_error(const std::string& oracle, const std::string& name, const std::vector<float>& got,
                 const std::vector<int64_t>& shape) {
  std::vector<int64_t> want_shape;
  const std::vector<float> want = read_h5_f32(oracle, name, &want_shape);
  EXPECT_EQ(want_shape, shape) << name;
  if (want.size() != got.size()) return INFINITY;
  double diff = 0.0, scale = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(got[i]) - want[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(want[i])));
  }
  return diff / scale;
}

void check_against_oracle(const std::string& model, const std::string& oracle_name) {
  const std::string oracle = kFixtures + "forward/" + oracle_name;
  const auto ckpt = open_checkpoint(kFixtures + model);
  const ClipVisionConfig cfg = clip_vit_config(*ckpt);
  const Images images = read_exemplars(kFixtures + "exemplars.h5", "task1", kImages, "");
  ASSERT_EQ(images.n, kImages);

  auto backend = make_backend("cpu", 0, "test");
  const ClipForward forward(cfg, *backend);
  RowSink sink;
  const WeightSource weights = [&](const std::string& name) { return ckpt->read(name); };
  const ClipForward::Pooled out = forward.run(weights, images.pixels.data(), images.n, &sink);

  // Every site of docs/DESIGN.md: pre_ln, six per block, post_ln.
  EXPECT_EQ(sink.rows_.size(), static_cast<size_t>(6 * cfg.layers + 2));
  double worst = 0.0;
  std::string worst_at;
  auto check = [&](const std::string& name, const std::vector<float>& got, const std::vector<int64_t>& shape) {
    const double e = rel_error(oracle, name, got, shape);
    EXPECT_LE(e, 1e-4) << model << ": " << name;
    if (e > worst || worst_at.empty()) {
      worst = e;
      worst_at = name;
    }
  };
  for (const auto& [site, r] : sink.rows_) check(site, r.rows, r.shape);
  check("pooled", out.pooled, {kImages, cfg.hidden});
  if (!cfg.names.proj.empty()) check("image_embeds", out.embeds, {kImages, cfg.proj_dim});
  std::printf("[ oracle   ] %s: %zu sites, max relative error %.3g (%s)\n", oracle_name.c_str(), sink.rows_.size(),
              worst, worst_at.c_str());
}

TEST(ClipForward, MatchesTransformersHf) { check_against_oracle("clip_hf/expert1", "clip_hf_expert1.h5"); }

TEST(ClipForward, MatchesTransformersOpenClip) {
  check_against_oracle("clip_openclip/expert1.safetensors", "clip_openclip_expert1.h5");
}

}  // namespace
}  // namespace cm
