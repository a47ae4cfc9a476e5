#pragma once
// `catmerge sweep CONFIG.yaml [--part I/N | --collect] [--set key=value ...]` (README "Sweeps"): every point of
// the configuration's grids (job/sweep_config.hpp) merged and scored in one job, on every rank of it. The inputs
// are opened once and each feature model's features collected once (job/merge_phases); the points that differ
// only in the final scale alpha of a method that has one (methods/method.hpp) form a group whose alpha-free
// direction is merged once (CAT's removal bases for a (lambda, c), TIES's and PCB's trims) and then scaled for
// each alpha, with the same bits as one `run` per point. Each point's model is held in memory, scored on the
// selection split (job/eval_score) and recorded in the journal (job/sweep_results) before the next; then each
// method's chosen point is merged again, scored on the test split, and the selected point is written to
// output.path. With --part I/N (0 <= I < N, a Slurm array task) only the groups g with g % N == I are scored;
// --collect then selects, scores and writes from the journal that the parts left. With `spread: points` each
// rank of the job is such a part on its own (every size-th group, the whole model on each rank), and rank 0
// collects.
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.hpp"

namespace cm {

// `args`: the words after `sweep`. `job` receives the job's communicator (NCCL on GPUs), so that a failure
// aborts through it. Returns the exit code; throws cm::Error on bad input.
int sweep_command(const std::vector<std::string>& args, int local_rank, Communicator& world,
                  std::shared_ptr<Communicator>& job);

}  // namespace cm
