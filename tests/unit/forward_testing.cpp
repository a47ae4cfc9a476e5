#include "forward_testing.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "arch/registry.hpp"
#include "features/clip_forward.hpp"
#include "features/forward.hpp"
#include "io/checkpoint.hpp"
#include "io/exemplars.hpp"

namespace cm::testing {
namespace {

std::string fixture_path(const std::string& path) {
  return !path.empty() && path[0] == '/' ? path : std::string(CATMERGE_SOURCE_DIR) + "/data/fixtures/" + path;
}

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

}  // namespace

double expect_forward_matches_oracle(Backend& backend, const std::string& arch, const std::string& model,
                                     const std::string& exemplars, const std::string& group,
                                     const std::string& oracle_name, int64_t count) {
  const std::string oracle = fixture_path(oracle_name);
  const auto ckpt = open_checkpoint(fixture_path(model));
  const ArchModel described = describe_model(arch, *ckpt);
  const Exemplars x = read_exemplars(fixture_path(exemplars), group, count, "");
  EXPECT_EQ(x.n, count);

  const std::unique_ptr<Forward> forward = make_forward(described, backend);
  forward->check_input(x, exemplars);
  RowSink sink;
  const WeightSource weights = [&](const std::string& name) { return own_weight(ckpt->read(name)); };
  std::vector<float> hidden, before_last;
  for (int s = 0; s < forward->num_stages(); ++s) {
    if (s == forward->num_stages() - 1) before_last = hidden;
    forward->stage(s, weights, x, hidden, &sink);
  }

  // Every site the model describes is recorded.
  EXPECT_EQ(sink.rows_.size(), described.model.sites.size());
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
  check("pooled", hidden, {count, forward->pooled_dim()});
  if (const auto* clip = std::get_if<ClipVisionConfig>(&described.config); clip && !clip->names.proj.empty()) {
    const ClipForward::Pooled out = ClipForward(*clip, backend).final(weights, before_last, x.n, nullptr);
    check("image_embeds", out.embeds, {count, clip->proj_dim});
  }
  std::printf("[ oracle   ] %s on %s: %zu sites, max relative error %.3g (%s)\n", oracle_name.c_str(), backend.name(),
              sink.rows_.size(), worst, worst_at.c_str());
  return worst;
}

}  // namespace cm::testing
