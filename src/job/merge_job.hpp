#pragma once
#include <cstdint>
#include <vector>

#include "arch/registry.hpp"
#include "comm/communicator.hpp"
#include "job/config.hpp"
#include "methods/linalg.hpp"
#include "plan/shard_plan.hpp"

namespace cm {

// What a run measured: wall time of each phase (seconds, this rank), bytes and peak memory per rank.
struct MergeReport {
  double open = 0, features = 0, prepare = 0, merge = 0, write = 0, total = 0;
  ConflictStats cat;                  // CAT's linear steps on this rank, inside merge
  std::vector<uint64_t> bytes_read;   // per rank: every byte of weights read (shard + forward)
  std::vector<uint64_t> shard_bytes;  // per rank: bytes of its own tensors in the base checkpoint
  std::vector<double> shard_cost;     // per rank: the plan's estimate of its work
  std::vector<uint64_t> peak_rss;     // per rank: peak resident memory (bytes)
  std::vector<double> shard_seconds;  // per rank: seconds from the start until its last tensor was sent
  std::vector<double> output_io;      // per rank: seconds its threads spent writing merged bytes (inside merge)
  size_t tensors = 0;                 // tensors of the model
  std::vector<uint64_t> resumed;      // per rank: tensors taken from an interrupted run's resume directory
  uint64_t input_bytes = 0;           // every weight file's size: the checkpoints
  uint64_t feature_bytes = 0;         // this rank's feature statistics, held through the merge
};

// The whole `catmerge run`, on every rank of `comm`, through the phases of job/merge_phases: open and check the
// inputs, plan the shards by the method's cost, collect features through the rank pipeline if the method needs
// them, compute whole-model statistics, merge each rank's tensors (every core of the rank busy) and write them:
// streamed to rank 0 for an HDF5 output, into each rank's own shards for a safetensors one; either way under a
// temporary name renamed only when complete. Each merged tensor is also saved in the resume directory
// (job/resume.hpp), so a run killed and started again merges only what is left. Rank 0 prints progress.
// Throws cm::Error on bad input; no output exists then.
MergeReport run_merge(const JobConfig& cfg, Communicator& comm);

// The shard plan of a run's configuration for `ranks` ranks, from the checkpoints' headers (catmerge plan);
// a method with features reads the exemplars, when every expert names them, for the rows they record.
ShardPlan plan_run(const JobConfig& cfg, int ranks, const ArchModel& arch);

}  // namespace cm
