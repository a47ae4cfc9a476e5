#pragma once
#include "job/config.hpp"

namespace cm {

// Wall time of each phase of a run, in seconds.
struct MergeTimings {
  double open = 0, features = 0, prepare = 0, merge_write = 0, total = 0;
};

// The whole `catmerge run`: open and check inputs, collect features if the method needs them, compute
// whole-model statistics, merge unit by unit, and write the HDF5 output under a temporary name that is
// renamed only when complete. Throws cm::Error on bad input; no output exists then.
MergeTimings run_merge(const JobConfig& cfg);

}  // namespace cm
