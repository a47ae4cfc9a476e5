#pragma once
// A sweep's configuration (README "Sweeps"): the run configuration's sections, and `sweep`:
//
//   sweep:
//     dir: DIR                  # the sweep's folder: results, plots, and the journal of scored points
//                               # (default: beside output.path, <its stem>.sweep)
//     grids:                    # one map per method: each list is swept, each scalar fixed; the points of a
//       - {method: cat, lambda: [1, 5], c: [3, 8], alpha: [0.1, 0.2, 0.3]}   # map are every combination, the
//       - {method: ties, density: 0.2, alpha: [0.3, 0.5]}                     # first key varying slowest
//       - {method: ties, name: ties_sum, disjoint: sum, alpha: [0.3, 0.5]}    # name: see SweepPoint::name
//     select: {split: val, metric: average}   # metric: average, or a task's name; split: val or test
//     test: true                # score each method's chosen point on the test split too
//     write: selected           # selected: output.path gets the chosen point; all: every point too, in DIR/points
//     spread: layers            # several ranks: layers (each point sharded over the ranks, as `run`) or points
//                               # (each rank merges and scores whole groups of points on its own)
//
// Points are numbered from 0 in grid order; that number names a point in the journal and the tables.
#include <map>
#include <string>
#include <vector>

#include "job/config.hpp"

namespace cm {

struct SweepPoint {
  int index = 0;
  std::string method;
  // The grid's `name` (default: the method's): a point is chosen per name, and the tables and plots show it,
  // so two grids of one method (TIES with disjoint mean and with sum) are two rows.
  std::string name;
  std::map<std::string, std::string> params;  // as JobConfig::method_params: key -> scalar text
  std::string setting;                        // "alpha=0.1 c=3 lambda=1" in the grid's key order; "-" when none
};

enum class SweepWrite { Selected, All };
enum class SweepSpread { Layers, Points };

struct SweepConfig {
  std::string dir;
  std::vector<SweepPoint> points;
  std::string select_split = "val";
  std::string select_metric = "average";
  bool test = true;
  SweepWrite write = SweepWrite::Selected;
  SweepSpread spread = SweepSpread::Layers;
  std::string key_text;  // what the journal's results depend on, as YAML (inputs, features, eval, grids)
};

// Reads the `sweep` section of `path` (with `sets` applied, as load_config does). Throws cm::Error naming the
// file and key: a missing or empty grid list, a grid without a known method, an empty list, a bad select.
SweepConfig load_sweep_config(const std::string& path, const std::vector<std::string>& sets, const JobConfig& job);

// `cfg` with one point's method and hyperparameters, and its output at `output_path`.
JobConfig point_config(const JobConfig& cfg, const SweepPoint& p, const std::string& output_path);

}  // namespace cm
