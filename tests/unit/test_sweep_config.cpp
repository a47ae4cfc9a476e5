// A sweep's configuration: the grids expanded into numbered points (the first key varying slowest), the
// selection and write keys, and the errors of a bad sweep section.
#include <gtest/gtest.h>

#include <fstream>

#include "common/error.hpp"
#include "job/config.hpp"
#include "job/sweep_config.hpp"
#include "test_support.hpp"

namespace cm {
namespace {

namespace fs = std::filesystem;

const char* const kJob =
    "model: {arch: clip_vit, base: base}\n"
    "experts: [{path: e1}, {path: e2}]\n"
    "output: {path: out/merged.h5}\n";

class SweepConfigTest : public ::testing::Test {
 protected:
  SweepConfig load(const std::string& sweep, const std::vector<std::string>& sets = {}) {
    const fs::path p = dir_ / "sweep.yaml";
    std::ofstream(p) << kJob << sweep;
    const JobConfig job = load_config(p.string(), sets, false);
    return load_sweep_config(p.string(), sets, job);
  }
  std::string error_of(const std::string& sweep, const std::vector<std::string>& sets = {}) {
    try {
      load(sweep, sets);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
  test::ScratchDir dir_;
};

TEST_F(SweepConfigTest, ExpandsEachGridFirstKeySlowest) {
  const SweepConfig c = load(
      "sweep:\n"
      "  grids:\n"
      "    - {method: weight_average}\n"
      "    - {method: cat, lambda: [1, 5], c: 3, alpha: [0.1, 0.2, 0.3]}\n");
  ASSERT_EQ(c.points.size(), 7u);
  EXPECT_EQ(c.points[0].method, "weight_average");
  EXPECT_EQ(c.points[0].setting, "-");
  EXPECT_TRUE(c.points[0].params.empty());
  const std::vector<std::string> settings = {"lambda=1 c=3 alpha=0.1", "lambda=1 c=3 alpha=0.2",
                                             "lambda=1 c=3 alpha=0.3", "lambda=5 c=3 alpha=0.1",
                                             "lambda=5 c=3 alpha=0.2", "lambda=5 c=3 alpha=0.3"};
  for (size_t i = 0; i < settings.size(); ++i) {
    const SweepPoint& p = c.points[i + 1];
    EXPECT_EQ(p.index, static_cast<int>(i + 1));
    EXPECT_EQ(p.method, "cat");
    EXPECT_EQ(p.setting, settings[i]);
    EXPECT_EQ(p.params.at("c"), "3");
  }
  EXPECT_EQ(c.points[4].params.at("lambda"), "5");
  EXPECT_EQ(c.points[4].params.at("alpha"), "0.1");
  // Defaults: beside output.path, selected on val's average, test scored, only the selection written.
  EXPECT_EQ(c.dir, (dir_ / "out/merged.sweep").string());
  EXPECT_EQ(c.select_split, "val");
  EXPECT_EQ(c.select_metric, "average");
  EXPECT_TRUE(c.test);
  EXPECT_EQ(c.write, SweepWrite::Selected);
  EXPECT_EQ(c.points[0].name, "weight_average");  // a grid without `name` is named by its method
  EXPECT_EQ(c.points[1].name, "cat");
}

TEST_F(SweepConfigTest, NamedGridsOfOneMethodAreChosenApart) {
  const SweepConfig c = load(
      "sweep:\n"
      "  grids:\n"
      "    - {method: ties, alpha: [0.3, 0.5]}\n"
      "    - {method: ties, name: ties_sum, disjoint: sum, alpha: [0.3, 0.5]}\n");
  ASSERT_EQ(c.points.size(), 4u);
  EXPECT_EQ(c.points[1].name, "ties");
  EXPECT_EQ(c.points[2].name, "ties_sum");
  EXPECT_EQ(c.points[2].method, "ties");
  EXPECT_EQ(c.points[2].setting, "disjoint=sum alpha=0.3");  // the name is no hyperparameter
  EXPECT_EQ(c.points[2].params.count("name"), 0u);
}

TEST_F(SweepConfigTest, EachPointTakesItsMethodsFeatureModelUnlessTheFileGivesOne) {
  const std::string grids =
      "sweep:\n"
      "  grids:\n"
      "    - {method: cat, alpha: 0.3}\n"
      "    - {method: cat, variant: released, alpha: 0.3}\n";
  const SweepConfig c = load(grids);
  const JobConfig job = load_config((dir_ / "sweep.yaml").string(), {}, false);
  EXPECT_EQ(point_config(job, c.points[0], "a.h5").feature_model, FeatureModel::Expert);
  EXPECT_EQ(point_config(job, c.points[1], "b.h5").feature_model, FeatureModel::Scaled);  // METHODS.md's default
  const JobConfig given = load_config((dir_ / "sweep.yaml").string(), {"features.model=expert"}, false);
  EXPECT_EQ(point_config(given, c.points[1], "b.h5").feature_model, FeatureModel::Expert);
}

TEST_F(SweepConfigTest, ReadsSelectionAndOverrides) {
  const SweepConfig c = load(
      "sweep:\n"
      "  dir: sw\n"
      "  grids: [{method: ties, alpha: [0.3, 0.5]}]\n"
      "  select: {split: test, metric: digits}\n"
      "  test: false\n"
      "  write: all\n",
      {"sweep.grids.0.alpha=[0.7]"});
  EXPECT_EQ(c.dir, (dir_ / "sw").string());
  ASSERT_EQ(c.points.size(), 1u);
  EXPECT_EQ(c.points[0].setting, "alpha=0.7");
  EXPECT_EQ(c.select_split, "test");
  EXPECT_EQ(c.select_metric, "digits");
  EXPECT_FALSE(c.test);
  EXPECT_EQ(c.write, SweepWrite::All);
}

TEST_F(SweepConfigTest, KeyLeavesOutWhatScoresDoNotDependOn) {
  const std::string grid = "sweep:\n  grids: [{method: ties, alpha: [0.3, 0.5]}]\n";
  const SweepConfig a = load(grid);
  EXPECT_EQ(load(grid, {"output.path=/elsewhere.h5", "sweep.select.metric=digits"}).key_text, a.key_text);
  EXPECT_NE(load(grid, {"sweep.grids.0.alpha=[0.3]"}).key_text, a.key_text);
  EXPECT_NE(load(grid, {"features.exemplars=4"}).key_text, a.key_text);
}

TEST_F(SweepConfigTest, BadSectionsNameTheKey) {
  EXPECT_NE(error_of("").find("sweep: missing section"), std::string::npos);
  EXPECT_NE(error_of("sweep: {grids: []}\n").find("sweep.grids: expected a non-empty list"), std::string::npos);
  EXPECT_NE(error_of("sweep: {grids: [{alpha: [1]}]}\n").find("sweep.grids.0.method: missing"), std::string::npos);
  EXPECT_NE(error_of("sweep: {grids: [{method: magic}]}\n").find("sweep.grids.0.method"), std::string::npos);
  EXPECT_NE(error_of("sweep: {grids: [{method: cat, alpha: []}]}\n").find("sweep.grids.0.alpha: an empty list"),
            std::string::npos);
  EXPECT_NE(error_of("sweep: {grids: [{method: cat}], select: {split: train}}\n").find("sweep.select.split"),
            std::string::npos);
  EXPECT_NE(error_of("sweep: {grids: [{method: cat}], colour: red}\n").find("sweep.colour"), std::string::npos);
  EXPECT_NE(error_of("sweep: {grids: [{method: cat, name: a/b}]}\n").find("sweep.grids.0.name"), std::string::npos);
}

}  // namespace
}  // namespace cm
