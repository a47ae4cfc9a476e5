#pragma once
// The per-tensor loop of every merge (`run`, `sweep`): one tensor of this rank's shard, read from the
// checkpoints and merged block by block (or, for a sweep, the alpha-free direction D of a method with a final
// scale, methods/method.hpp), each block's values handed to a consumer that stores them where they go.
#include <cstdint>
#include <functional>
#include <vector>

#include "job/inputs.hpp"
#include "methods/method.hpp"

namespace cm {

// What the loop computes of each block: the merged values, or the method's direction().
enum class MergeValues { Merged, Direction };

// One block of a tensor: elements [first, first + n) of it, with the base's values of the same elements.
struct MergedBlock {
  int worker = 0;  // the thread handing it over, below MergeLoop::workers()
  int64_t first = 0, n = 0;
  const float* base = nullptr;
  const float* values = nullptr;
};

class MergeLoop {
 public:
  using Consumer = std::function<void(const MergedBlock&)>;
  MergeLoop(const JobInputs& in, Method& method, MergeValues what);

  // Threads that may hand blocks over at once (consumers keep per-worker scratch).
  int workers() const { return workers_; }

  // Every block of tensor t, each element once. Element-wise methods take the tensor in blocks spread over every
  // CPU thread (with each unit's statistics first, for methods that need them), so `consume` runs on several
  // threads at once on disjoint blocks; the others take it unit by unit (and use the threads themselves).
  // `between` runs on the calling thread between units (the gather's poll).
  void tensor(const TensorSpec& t, const Consumer& consume, const std::function<void()>& between);

 private:
  void compute(const MergeUnit& part, UnitValues& v, std::vector<float>& out);

  const JobInputs& in_;
  Method& method_;
  MergeValues what_;
  int workers_;
  std::vector<UnitValues> values_;          // per worker
  std::vector<std::vector<float>> result_;  // per worker: a unit's or a block's values
};

}  // namespace cm
