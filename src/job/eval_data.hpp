#pragma once
// One task's labelled evaluation split in eval.data (job/eval_config.hpp): /<task>/<split>/ holds the
// exemplars (images, pixel values or token sequences, read by io/exemplars) and integer labels [N].
#include <cstdint>
#include <string>
#include <vector>

#include "io/exemplars.hpp"

namespace cm {

class EvalSet {
 public:
  // Reads the labels and counts the exemplars; throws cm::Error naming "<file>:/<task>/<split>" when the
  // task, the split or the labels are missing, or the labels are not integers, one per exemplar.
  EvalSet(const std::string& file, const std::string& task, const std::string& split);

  int64_t size() const { return n_; }
  const std::vector<int64_t>& labels() const { return labels_; }
  // "<file>:/<task>/<split>", for error messages.
  const std::string& where() const { return where_; }
  // Exemplars [first, first + count).
  Exemplars batch(int64_t first, int64_t count) const;

 private:
  std::string file_, group_, where_;
  int64_t n_ = 0;
  std::vector<int64_t> labels_;
};

}  // namespace cm
