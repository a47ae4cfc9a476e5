#pragma once
// `catmerge eval CONFIG.yaml --model MODEL [--split test|val] [--task NAME ...] [--out PREFIX] [--set k=v ...]`:
// runs each task's evaluation exemplars through MODEL's forward (the architecture of `model.arch`; its pooled
// output: clip_vit's post-LayerNorm CLS token, llama's final-norm last real token) and that task's linear head, and reports per-task and average accuracy
// (the unweighted mean over tasks) as a table on stdout, PREFIX.csv and PREFIX.json. The configuration's
// `eval` section names the heads and the data (job/eval_config.hpp, README "Evaluation").
#include <cstdint>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "comm/communicator.hpp"
#include "io/checkpoint.hpp"
#include "job/eval_config.hpp"

namespace cm {

struct TaskAccuracy {
  std::string task;
  uint64_t images = 0;
  uint64_t correct = 0;
  double percent() const { return images ? 100.0 * static_cast<double>(correct) / static_cast<double>(images) : 0.0; }
};

// This rank's share of the counts: each task's images are cut into batches of cfg.batch, and batch b goes to
// rank b % size, so the sum over ranks is the whole set whatever the number of ranks. The predicted class
// is the first index of the largest logit.
std::vector<TaskAccuracy> eval_counts(const EvalConfig& cfg, const Checkpoint& model, const std::string& split,
                                      const std::vector<std::string>& tasks, Backend& backend, int rank, int size);

// The whole command (`args`: the words after `eval`). Every rank computes its share; counts are summed
// with comm.sum; rank 0 prints and writes the files. Returns the exit code; throws cm::Error on bad input.
int eval_command(const std::vector<std::string>& args, Communicator& comm);

}  // namespace cm
