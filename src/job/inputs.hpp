#pragma once
// The checkpoints of a job, opened and checked against each other before any weight is read, and the
// one place weights are read from (so bytes read per rank are counted).
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

  // A tensor as float32, counted in bytes_read().
  std::vector<float> read(const Checkpoint& ck, const std::string& name) const;
  uint64_t bytes_read() const { return bytes_read_; }

  // One tensor of the base and every expert, with the task vectors T_k = theta_k - theta_0.
  // Throws cm::Error naming the expert's file when a task vector holds NaN or Inf.
  void read_task_vectors(const TensorSpec& t, std::vector<float>& base, TaskVectors& tasks) const;

 private:
  std::unique_ptr<Checkpoint> base_;
  std::vector<std::unique_ptr<Checkpoint>> experts_;  // config order
  std::vector<std::unique_ptr<Checkpoint>> fisher_;   // one per expert, or none
  ArchModel arch_;
  mutable uint64_t bytes_read_ = 0;
};

// The values of `unit` within a whole tensor's values.
std::vector<float> unit_slice(const std::vector<float>& tensor, const MergeUnit& unit);

// Reads tensor `t` and visits each of its merge units with base values and task vectors.
void visit_units(const JobInputs& in, const TensorSpec& t, const UnitStream::Visitor& visit);

// Streams the units of the tensors [first, end) of the model (a rank's shard) from the checkpoints.
class CheckpointUnitStream : public UnitStream {
 public:
  CheckpointUnitStream(const JobInputs& in, int first, int end) : in_(in), first_(first), end_(end) {}
  void for_each(const Visitor& visit) override;

 private:
  const JobInputs& in_;
  int first_, end_;
};

}  // namespace cm
