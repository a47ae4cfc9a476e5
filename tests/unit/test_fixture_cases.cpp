// End-to-end: every case of data/fixtures/cases.json, made by the independent Python reference
// (tools/reference/), merged by catmerge and compared tensor by tensor with the reference's output.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "comm/communicator.hpp"
#include "common/dtype.hpp"
#include "io/checkpoint.hpp"
#include "job/config.hpp"
#include "job/merge_job.hpp"
#include "test_support.hpp"

namespace cm {
namespace {

using nlohmann::json;
using test::fixtures_dir;

json load_cases() {
  std::ifstream in(fixtures_dir() / "cases.json");
  return in ? json::parse(in) : json::array();
}

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  for (const auto& c : load_cases()) names.push_back(c["name"]);
  return names;
}

json find_case(const std::string& name) {
  for (const auto& c : load_cases())
    if (c["name"] == name) return c;
  return nullptr;
}

// The case's configuration with its fixture paths made absolute and the output in `out`.
std::string config_text(json cfg, const std::string& out) {
  const std::string root = fixtures_dir().string() + "/";
  cfg["model"]["base"] = root + cfg["model"]["base"].get<std::string>();
  for (auto& e : cfg["experts"])
    for (const char* key : {"path", "exemplars", "fisher"})
      if (e.contains(key)) e[key] = root + e[key].get<std::string>();
  cfg["output"]["path"] = out;
  return cfg.dump(2);
}

std::string bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One unit in the last place of a 16-bit value near v (the reference rounds the same float32 result,
// so a last-bit difference of the float32 can flip the 16-bit rounding).
double ulp16(DType t, float v) {
  const int e = std::ilogb(std::max(std::fabs(v), t == DType::F16 ? 6.1e-5f : 1e-38f));
  return std::ldexp(1.0, e - (t == DType::F16 ? 10 : 7));
}

class FixtureCase : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureCase, MatchesReferenceAndIsReproducible) {
  const json c = find_case(GetParam());
  ASSERT_FALSE(c.is_null());
  const test::ScratchDir dir;
  const std::string out = (dir / "merged.h5").string();
  {
    std::ofstream(dir / "merge.yaml") << config_text(c["config"], out);
  }
  const JobConfig cfg = load_config((dir / "merge.yaml").string(), {});
  SoloCommunicator solo;
  run_merge(cfg, solo);
  const std::string first = bytes_of(out);
  run_merge(cfg, solo);
  EXPECT_EQ(first, bytes_of(out)) << "two runs of the same configuration differ";

  const std::string expected_path = (fixtures_dir() / c["expected"].get<std::string>()).string();
  const auto want = open_checkpoint(expected_path);
  const auto got = open_checkpoint(out);
  ASSERT_EQ(got->tensors().size(), want->tensors().size());
  for (const TensorInfo& w : want->tensors()) {
    SCOPED_TRACE(w.name);
    const TensorInfo* g = got->find(w.name);
    ASSERT_NE(g, nullptr) << "missing from the output";
    EXPECT_EQ(g->shape, w.shape);
    EXPECT_EQ(g->dtype, w.dtype);
    const std::vector<float> a = got->read(w.name), b = want->read(w.name);
    ASSERT_EQ(a.size(), b.size());
    double scale = 0, worst = 0;
    for (float v : b) scale = std::max(scale, static_cast<double>(std::fabs(v)));
    for (size_t i = 0; i < a.size(); ++i) {
      double err = std::fabs(static_cast<double>(a[i]) - b[i]);
      if (w.dtype != DType::F32 && err <= ulp16(w.dtype, b[i])) err = 0;
      worst = std::max(worst, err);
    }
    EXPECT_LE(worst, 1e-5 * std::max(scale, 1e-30)) << "max relative error " << worst / scale;
  }
}

INSTANTIATE_TEST_SUITE_P(Reference, FixtureCase, ::testing::ValuesIn(case_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST(FixtureCases, ArePresent) { EXPECT_GE(case_names().size(), 16u); }

}  // namespace
}  // namespace cm
