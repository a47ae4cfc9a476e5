#pragma once
// TIES' trim and sign election over a scope (METHODS.md "TIES-Merging" steps 1-2), the same for any number of
// ranks, threads and blocks:
//   1. exact selection (methods/select.hpp) finds each task's threshold t_k, the k-th largest |T_k| of the scope
//      with k = floor(d * density), and how many magnitudes lie above it and at it. Every entry above t_k is
//      kept, and r_k = k - (entries above) of the entries at t_k: the first r_k in scope order (units in model
//      order, then the flat index). Where every entry at t_k is kept (r_k of them: the common case of float32
//      task vectors) that is the whole rule;
//   2. otherwise one pass counts the entries at t_k per unit, an all-reduce makes those counts global, and the
//      running count in unit order gives every unit its cut: all of its ties, none, or (the one unit where the
//      count passes r_k) the ties below a flat index, which the rank holding that unit finds in the pass below;
//   3. one pass counts the trimmed sums > 0 and < 0 (reduced over ranks): the majority sign of step 2.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "merge_math.hpp"
#include "methods/method_common.hpp"

namespace cm {

// The merge units of a model numbered in model order (tensors as the ModelSpec lists them, a fused tensor's row
// blocks in row order): the scope order of the trim's ties.
class UnitIndex {
 public:
  explicit UnitIndex(const ModelSpec& model);
  // The unit of a unit or of a block of one.
  size_t of(const MergeUnit& block) const;
  size_t size() const { return size_; }

 private:
  std::unordered_map<std::string, size_t> first_;  // tensor name -> the index of its first unit
  size_t size_ = 0;
};

// What the trim of one scope keeps of each task in each unit, and the scope's majority sign.
class TiesTrim {
 public:
  TiesTrim() = default;
  TiesTrim(size_t units, int num_tasks) : num_tasks_(num_tasks), trims_(units * static_cast<size_t>(num_tasks)) {}
  // trims[k] for the entries of unit u (merge_math.hpp ties_trim).
  std::vector<TiesTaskTrim> of_unit(size_t u) const;
  TiesTaskTrim& at(size_t u, int k) { return trims_[u * static_cast<size_t>(num_tasks_) + static_cast<size_t>(k)]; }
  bool empty() const { return trims_.empty(); }
  float majority = 1.0f;

 private:
  int num_tasks_ = 0;
  std::vector<TiesTaskTrim> trims_;  // [unit][task]
};

// Steps 1-2's statistics of the scope for `density`; the scope's blocks are numbered by `units`. Collective: every
// rank calls it with its share of the scope, and all get the same answer (each rank's trims hold for its own units).
TiesTrim ties_trim_scope(const Scope& scope, const UnitIndex& units, int num_tasks, double density, Reducer& reducer);

}  // namespace cm
