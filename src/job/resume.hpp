#pragma once
// A run's completed tensors, kept across a kill (README "Preemption and resume"). Slurm sends SIGTERM (or the
// signal of --signal) before it kills a job, and a requeued job starts again from the top; so every tensor
// this rank has merged is saved as it completes, in its stored bytes, under `<output>.resume/`: t<index>.bin,
// each written under a temporary name and renamed, so a file there is always whole after any kill of the process
// (not after a crash of the node: the data is not forced to disk). key.json names the run
// (its effective configuration, its inputs' sizes and times, catmerge's version). A later run with the same
// key takes those tensors as they are instead of merging them again, so its output is byte-identical to an
// uninterrupted run's; any other key clears the directory. The directory goes once the output is committed.
#include <cstdint>
#include <string>
#include <vector>

#include "comm/communicator.hpp"
#include "job/config.hpp"

namespace cm {

class ResumeStore {
 public:
  // Collective: rank 0 keeps the directory of an earlier run with this configuration, or starts it afresh.
  ResumeStore(const JobConfig& cfg, Communicator& comm);

  const std::string& dir() const { return dir_; }
  // The stored bytes of tensor t (index in the model), when an earlier run saved exactly `bytes` of them.
  bool load(int t, uint64_t bytes, std::vector<unsigned char>& out);
  // Tensor t's stored bytes, saved. Throws cm::Error naming the file when it cannot be written.
  void save(int t, const void* data, uint64_t bytes);
  // Tensors this rank took from the directory.
  int reused() const { return reused_; }
  // Collective, after the output is committed: the directory removed.
  void finish();
  // After a failure of the run itself (bad input found mid-merge, a full disk): the directory removed by the
  // rank that unwinds, since what it holds belongs to a run that cannot succeed as it is. A signal keeps it.
  void discard();

 private:
  std::string file_of(int t) const;

  std::string dir_;
  Communicator& comm_;
  int reused_ = 0;
};

// What names a job's saved work (a run's resume directory, a sweep's journal): hex digest of `text` (the parts of
// the configuration that work depends on), catmerge's version and every input file's path, size and
// modification time (content hashes would read every input once more).
std::string job_key(const JobConfig& cfg, const std::string& text);

}  // namespace cm
