#pragma once
// The checkpoints of a job, opened and checked against each other before any weight is read, and the
// one place weights are read from (so bytes read per rank are counted).
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "arch/registry.hpp"
#include "io/checkpoint.hpp"
#include "job/config.hpp"
#include "methods/method.hpp"

namespace cm {

// The values a method merges: base and task vectors of one unit (or a block of one). Kept between units, so
// the vectors' memory is reused.
struct UnitValues {
  std::vector<float> base;
  TaskVectors tasks;
};

class JobInputs {
 public:
  // Opens base and experts (and Fisher files when `with_fisher`), describes the model from the base, and
  // checks that every expert (and Fisher file) has every tensor of the model with the base's shape.
  JobInputs(const JobConfig& cfg, bool with_fisher);

  const ModelSpec& model() const { return arch_.model; }
  const ArchModel& arch() const { return arch_; }
  size_t num_experts() const { return experts_.size(); }
  const Checkpoint& base() const { return *base_; }
  const Checkpoint& expert(size_t k) const { return *experts_[k]; }
  bool has_fisher() const { return !fisher_.empty(); }
  const Checkpoint& fisher(size_t k) const { return *fisher_[k]; }

  // Elements [first, first + count) of tensor `name` of ck as float32, counted in bytes_read(). Any thread.
  void read_into(const Checkpoint& ck, const std::string& name, int64_t first, int64_t count, float* out) const;
  std::vector<float> read(const Checkpoint& ck, const std::string& name) const;
  uint64_t bytes_read() const { return bytes_read_.load(); }

  // The base values and task vectors T_k = theta_k - theta_0 of elements [first, first + count) of tensor t,
  // the experts read on up to `threads` threads. Throws cm::Error naming the expert's file when a task vector
  // holds NaN or Inf. Any thread, own `values`.
  void read_values(const TensorSpec& t, int64_t first, int64_t count, UnitValues& values, int threads = 1) const;

  // Tensor t's bytes in every checkpoint: about to be read; read for good (dropped from this process's memory).
  void will_need(const TensorSpec& t) const;
  void release(const TensorSpec& t) const;

 private:
  std::vector<const Checkpoint*> all() const;

  std::unique_ptr<Checkpoint> base_;
  std::vector<std::unique_ptr<Checkpoint>> experts_;  // config order
  std::vector<std::unique_ptr<Checkpoint>> fisher_;   // one per expert, or none
  ArchModel arch_;
  mutable std::atomic<uint64_t> bytes_read_{0};
};

// Streams the units of the tensors [first, end) of the model (a rank's shard) from the checkpoints, reading
// each into the same buffers, and releasing each tensor after it.
class CheckpointUnitStream : public UnitStream {
 public:
  CheckpointUnitStream(const JobInputs& in, int first, int end) : in_(in), first_(first), end_(end) {}
  void for_each(const Visitor& visit) override;

 private:
  const JobInputs& in_;
  int first_, end_;
  UnitValues values_;
};

}  // namespace cm
