// The progress line: counts, share, elapsed time and the time left at the pace so far.
#include <gtest/gtest.h>

#include "job/progress.hpp"

namespace cm {
namespace {

TEST(Progress, LineHoldsCountShareElapsedAndTimeLeft) {
  // 212 of 576 in 9.1 s: 36.8% done, 9.1 * (576 - 212) / 212 = 15.6 s to go at that pace.
  EXPECT_EQ(progress_line("merge", "units", 212, 576, 9.1), "merge 212/576 units (36%), 9.1 s, about 16 s left");
}

TEST(Progress, NoEstimateBeforeTheFirstUnitOrAfterTheLast) {
  EXPECT_EQ(progress_line("features", "tasks", 0, 8, 0.4), "features 0/8 tasks (0%), 0.4 s");
  EXPECT_EQ(progress_line("merge", "units", 576, 576, 30.25), "merge 576/576 units (100%), 30.2 s");
}

}  // namespace
}  // namespace cm
