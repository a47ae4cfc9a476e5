// End-to-end: every case of data/fixtures/cases.json, made by the independent Python reference
// (tools/reference/), merged by catmerge and compared tensor by tensor with the reference's output.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "comm/communicator.hpp"
#include "io/checkpoint.hpp"
#include "job/config.hpp"
#include "job/merge_job.hpp"
#include "test_support.hpp"

namespace cm {
namespace {

using nlohmann::json;
using test::fixtures_dir;

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
  test::expect_same_tensors(*got, *want, 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Reference, FixtureCase, ::testing::ValuesIn(test::fixture_case_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST(FixtureCases, ArePresent) { EXPECT_GE(test::fixture_case_names().size(), 16u); }

}  // namespace
}  // namespace cm
