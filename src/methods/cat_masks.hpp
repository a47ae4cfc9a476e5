#pragma once
// CAT's masks for norm_scale and shift units (METHODS.md): for each task k, the at most c entries z with the
// largest score g_z > 0 (kernels/merge_math.hpp cat_entry_score), ties to the lower index; then
// T_i[z] = 0 for every i != k and z in task k's mask. The CUDA twin is kernels/select.cu.
#include <cstdint>
#include <vector>

#include "methods/method.hpp"

namespace cm {

// masks[k]: task k's entries, best first. xsq: per task, sum over rows of xhat^2 per entry (norm_scale);
// empty for a shift unit.
std::vector<std::vector<int64_t>> cat_entry_masks(const TaskVectors& tasks, const std::vector<const double*>& xsq,
                                                  double lambda, int c);

// Applies every mask, all computed from the original task vectors first.
void apply_entry_masks(const std::vector<std::vector<int64_t>>& masks, TaskVectors& tasks);

}  // namespace cm
