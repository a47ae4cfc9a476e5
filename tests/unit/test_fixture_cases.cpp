// End-to-end: every case of data/fixtures/cases.json, made by the independent Python reference
// (tools/reference/), merged by catmerge and compared tensor by tensor with the reference's output.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

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

// One unit in the last place of a 16-bit value near v (the reference rounds the same float32 result,
// so a last-bit difference of the float32 can flip the 16-bit rounding).
double ulp16(DType t, float v) {
  const int e = std::ilogb(std::max(std::fabs(v), t == DType::F16 ? 6.1e-5f : 1e-38f));
  return std::ldexp(1.0, e - (t == DType::F16 ? 10 : 7));
}

class FixtureCase : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureCase, MatchesReferenceAndIsReproducible) {
  const json c = test::fixture_case(GetParam());
  ASSERT_FALSE(c.is_null());
  const test::ScratchDir dir;
  const std::string out = (dir / "merged.h5").string();
  {
    std::ofstream(dir / "merge.yaml") << test::fixture_case_config(c["config"], out);
  }
  const JobConfig cfg = load_config((dir / "merge.yaml").string(), {});
  SoloCommunicator solo;
  run_merge(cfg, solo);
  const std::string first = test::file_bytes(out);
  run_merge(cfg, solo);
  EXPECT_EQ(first, test::file_bytes(out)) << "two runs of the same configuration differ";

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

INSTANTIATE_TEST_SUITE_P(Reference, FixtureCase, ::testing::ValuesIn(test::fixture_case_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST(FixtureCases, ArePresent) { EXPECT_GE(test::fixture_case_names().size(), 16u); }

}  // namespace
}  // namespace cm
