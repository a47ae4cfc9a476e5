#pragma once
// `catmerge eval CONFIG.yaml --model MODEL [--split test|val] [--task NAME ...] [--out PREFIX] [--set k=v ...]`:
// runs each task's evaluation exemplars through MODEL's forward (the architecture of `model.arch`; its pooled
// output: clip_vit's post-LayerNorm CLS token, llama's final-norm last real token) and that task's linear head, and reports per-task and average accuracy
// (the unweighted mean over tasks) as a table on stdout, PREFIX.csv and PREFIX.json. The configuration's
// `eval` section names the heads and the data (job/eval_config.hpp, README "Evaluation"). The scoring is
// job/eval_score (which a sweep uses to score many models on data read once); the output, job/eval_table.
#include <string>
#include <vector>

#include "comm/communicator.hpp"

namespace cm {

// The whole command (`args`: the words after `eval`). Every rank scores its share; counts are summed
// with comm.sum; rank 0 prints and writes the files. Returns the exit code; throws cm::Error on bad input.
int eval_command(const std::vector<std::string>& args, Communicator& comm);

}  // namespace cm
