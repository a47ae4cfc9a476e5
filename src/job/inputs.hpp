#pragma once
// The checkpoints of a job, opened and checked against each other before any weight is read.
#include <memory>
#include <string>
#include <vector>

#include "arch/clip_vit.hpp"
#include "io/checkpoint.hpp"
#include "job/config.hpp"
#include "methods/method.hpp"

namespace cm {

struct JobInputs {
  std::unique_ptr<Checkpoint> base;
  std::vector<std::unique_ptr<Checkpoint>> experts;  // config order
  std::vector<std::unique_ptr<Checkpoint>> fisher;   // one per expert, or empty
  ClipVisionConfig clip;
  ModelSpec model;
};

// Opens base and experts (and Fisher files when `with_fisher`), describes the model from the base, and
// checks that every expert (and Fisher file) has every tensor of the model with the base's shape.
JobInputs open_inputs(const JobConfig& cfg, bool with_fisher);

// Reads one tensor of the base and every expert and forms the task vectors T_k = theta_k - theta_0.
// Throws cm::Error naming the expert's file when a task vector holds NaN or Inf.
void read_task_vectors(const JobInputs& in, const TensorSpec& t, std::vector<float>& base, TaskVectors& tasks);

// The values of `unit` within a whole tensor's values.
std::vector<float> unit_slice(const std::vector<float>& tensor, const MergeUnit& unit);

// Streams every unit of the model from the checkpoints (for Method::prepare and the merge loop).
class CheckpointUnitStream : public UnitStream {
 public:
  explicit CheckpointUnitStream(const JobInputs& in) : in_(in) {}
  void for_each(const Visitor& visit) override;

 private:
  const JobInputs& in_;
};

}  // namespace cm
