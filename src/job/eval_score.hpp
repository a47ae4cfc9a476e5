#pragma once
// Scoring models on the evaluation sets with the task heads (README "Evaluation"), with the data held in
// memory: an EvalScorer reads the heads and this rank's exemplars once, and then scores any number of models
// of the architecture it was made for (eval_command scores one; a hyperparameter sweep, many).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "arch/registry.hpp"
#include "backend/backend.hpp"
#include "comm/communicator.hpp"
#include "features/forward.hpp"
#include "io/checkpoint.hpp"
#include "io/exemplars.hpp"
#include "job/eval_config.hpp"
#include "job/eval_heads.hpp"

namespace cm {

struct TaskAccuracy {
  std::string task;
  uint64_t images = 0;
  uint64_t correct = 0;
  double percent() const { return images ? 100.0 * static_cast<double>(correct) / static_cast<double>(images) : 0.0; }
};

class EvalScorer {
 public:
  // Reads the heads of `tasks` from cfg.heads and, for each task, this rank's batches of `split` from
  // cfg.data, once: each task's exemplars are cut into batches of cfg.batch and batch b goes to rank b % size,
  // so the sum over ranks is the whole set whatever the number of ranks. Throws cm::Error naming the file when
  // a head, a set or a label does not fit (a label outside its head's classes, exemplars the model cannot
  // take). `backend` must outlive the scorer.
  EvalScorer(const EvalConfig& cfg, const ArchModel& arch, Backend& backend, const std::vector<std::string>& tasks,
             const std::string& split, int rank, int size);

  // This rank's counts, one per task in the constructor's order, for the model whose float32 tensors
  // `weights` gives by name (every tensor of arch.model). The predicted class is the first index of the
  // largest logit. With a backend that allows concurrent callers (the CPU) the batches go through the forward
  // in cache-sized chunks side by side on the CPU threads, one BLAS thread each; the counts do not depend on
  // it. `weights` is called once per tensor and chunk, never by two threads at once, so it should hand out
  // stored tensors (checkpoint_weights) rather than make them.
  std::vector<TaskAccuracy> counts(const WeightSource& weights);

  // Floating-point operations of the forward's matrix products and of the heads in one counts() call on this
  // rank (Forward::matmul_flops), so callers can report GFLOP/s.
  double flops() const { return flops_; }

 private:
  struct Task {
    std::string name;
    Head head;
  };
  // One forward's worth of a task's exemplars: a batch, or a part of one (eval_score.cpp: kChunkHidden).
  struct Chunk {
    size_t task = 0;              // index into tasks_
    Exemplars x;
    std::vector<int64_t> labels;  // one per exemplar of x
  };

  Backend& backend_;
  std::unique_ptr<Forward> forward_;
  std::vector<Task> tasks_;
  std::vector<Chunk> chunks_;
  double flops_ = 0.0;
};

// The tensors of `model` as a WeightSource that reads and converts each tensor once, keeping it for later
// calls (copies of the source share what it keeps). `model` must outlive it; it is not for concurrent callers.
WeightSource checkpoint_weights(const Checkpoint& model);

// Collective: every rank's counts from `scorer` (made with comm's rank and size) summed with comm.sum, the
// whole sets' accuracies on every rank.
std::vector<TaskAccuracy> score_model(EvalScorer& scorer, const WeightSource& weights, Communicator& comm);

}  // namespace cm
