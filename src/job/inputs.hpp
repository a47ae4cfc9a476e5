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
  // checks that every expert (and Fisher file) has every tensor of the model with the base's shape. An expert
  // may be a PEFT adapter directory, read as the full expert it makes from the base (io/peft_adapter.hpp).
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

  std::shared_ptr<const Checkpoint> base_;  // shared with the experts that are adapters of it
  std::vector<std::unique_ptr<Checkpoint>> experts_;  // config order
  std::vector<std::unique_ptr<Checkpoint>> fisher_;   // one per expert, or none
  ArchModel arch_;
  mutable std::atomic<uint64_t> bytes_read_{0};
};

// A unit cut into blocks of whole rows, each small enough that its base, task vectors and result (K + 2 float32
// arrays) stay within ~512 KiB, in a core's L2 cache: element-wise work on a block then takes each input byte
// from memory once.
std::vector<MergeUnit> unit_blocks(const MergeUnit& unit, size_t num_tasks);

// Streams units from the checkpoints in those blocks, spread over every CPU thread (each worker reading into
// its own buffers): the tensors [first, end) of the model (a rank's shard), releasing each tensor's pages
// after it, or one unit.
class CheckpointUnitStream : public UnitStream {
 public:
  CheckpointUnitStream(const JobInputs& in, int first, int end);
  CheckpointUnitStream(const JobInputs& in, const MergeUnit& unit);
  void for_each(const Visitor& visit, int64_t sample_stride) override;
  int workers() const override { return workers_; }

 private:
  void visit_blocks(const TensorSpec& t, const std::vector<MergeUnit>& units, int64_t sample_stride,
                    const Visitor& visit);

  const JobInputs& in_;
  int first_ = 0, end_ = 0;
  const MergeUnit* unit_ = nullptr;
  int workers_;
  std::vector<UnitValues> values_;  // per worker
};

}  // namespace cm
