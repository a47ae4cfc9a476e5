#pragma once
#include <cstdint>
#include <vector>

#include "comm/communicator.hpp"
#include "job/config.hpp"
#include "methods/linalg.hpp"

namespace cm {

// What a run measured: wall time of each phase (seconds, this rank) and bytes per rank.
struct MergeReport {
  double open = 0, features = 0, prepare = 0, merge_write = 0, total = 0;
  ConflictStats cat;                  // CAT's linear steps, inside merge_write
  std::vector<uint64_t> bytes_read;   // per rank: every byte of weights read (shard + forward)
  std::vector<uint64_t> shard_bytes;  // per rank: bytes of its own tensors in the base checkpoint
};

// The whole `catmerge run`, on every rank of `comm`: open and check the inputs, plan the shards, collect
// features through the rank pipeline if the method needs them, compute whole-model statistics, merge
// each rank's tensors and gather them round by round on rank 0, which writes the HDF5 output under a
// temporary name renamed only when complete. Throws cm::Error on bad input; no output exists then.
MergeReport run_merge(const JobConfig& cfg, Communicator& comm);

}  // namespace cm
