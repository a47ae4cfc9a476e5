#pragma once
// A sweep's results (README "Sweeps"). The journal: DIR/points/<i>.json, one per scored point, each written
// whole (io/text_file) the moment its point is scored, so a sweep killed and started again, or the parts of a
// Slurm array, go on from what is there; DIR/sweep.json names the configuration and inputs the journal belongs
// to, and another sweep's folder is refused. The tables and plots are made from the journal alone.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "comm/communicator.hpp"
#include "job/config.hpp"
#include "job/eval_score.hpp"
#include "job/sweep_config.hpp"

namespace cm {

// One point's scores on one split (no tasks when the sweep has no eval section).
struct PointScore {
  int point = 0;
  std::string split;
  std::vector<TaskAccuracy> tasks;
  double merge_seconds = 0, eval_seconds = 0, gflops = 0;
  double average() const;  // unweighted mean over tasks of the percent accuracy
  // `metric`: "average" or a task's name (cm::Error naming sweep.select.metric otherwise).
  double metric(const std::string& metric) const;
};

class SweepJournal {
 public:
  // Collective: rank 0 makes DIR and DIR/points, and checks or writes DIR/sweep.json; then every rank reads
  // the points already scored. Throws cm::Error when DIR holds another sweep's journal.
  SweepJournal(const SweepConfig& sweep, const JobConfig& cfg, Communicator& comm);
  const std::optional<PointScore>& at(int point) const { return scores_[static_cast<size_t>(point)]; }
  // Rank 0 writes it; every rank keeps it.
  void record(const PointScore& score);

 private:
  std::string file_of(int point) const;

  const SweepConfig& sweep_;
  Communicator& comm_;
  std::vector<std::optional<PointScore>> scores_;
};

// Each grid name's chosen point (SweepPoint::name; best `select` metric on the selection split, the first in
// point order on a tie), in the order the names first appear in the grids.
std::vector<int> chosen_per_name(const SweepConfig& sweep, const SweepJournal& journal);

// DIR/results.csv (every point's selection-split accuracies, then each chosen point's test accuracies; no
// times, so that a resumed sweep writes the same bytes as an uninterrupted one), DIR/results.json (the same,
// with hyperparameters, times and GFLOP/s), and DIR/alpha-<method>.png (the selection-split metric against
// alpha, a line per setting of the other hyperparameters) when gnuplot is installed. Rank 0 only.
void write_sweep_results(const SweepConfig& sweep, const SweepJournal& journal, const std::vector<int>& chosen,
                         const std::vector<PointScore>& tests, int selected, const std::vector<std::string>& tasks);

}  // namespace cm
