#pragma once
// What `catmerge eval` reports of a scored model: the table on stdout, PREFIX.csv and PREFIX.json (README
// "Evaluation"). The average is the unweighted mean of the tasks' accuracies.
#include <string>
#include <vector>

#include "job/eval_score.hpp"

namespace cm {

struct EvalReport {
  std::string model;         // the model's path, as given
  std::string config;        // the configuration file, as given
  std::string split;
  std::string backend;       // Backend::name()
  int ranks = 1;
  double seconds = 0.0;      // the whole evaluation
  double gflop_per_s = 0.0;  // the forward's rate (EvalScorer::flops over the scoring time), in the table only
  std::vector<TaskAccuracy> tasks;  // summed over ranks
};

// The unweighted mean of the tasks' percentages.
double average_accuracy(const std::vector<TaskAccuracy>& tasks);

// A summary line, then one row per task and the average.
std::string eval_table(const EvalReport& report);
// task,split,images,correct,accuracy rows (percent, 4 decimals), then the average row.
std::string eval_csv(const EvalReport& report);
// model, config, split, backend, ranks, seconds, tasks [{task, images, correct, accuracy}] and average.
std::string eval_json(const EvalReport& report);

// PREFIX.csv and PREFIX.json, both or neither (io/text_file); throws cm::Error naming the file.
void write_eval_files(const EvalReport& report, const std::string& prefix);

}  // namespace cm
