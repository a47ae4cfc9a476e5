#pragma once
// CAT's masks for norm_scale and shift units (METHODS.md): for each task k, the entries z of task k's mask; then
// T_i[z] = 0 for every i != k and z in task k's mask. Paper: the at most c entries with the largest score g_z > 0
// (kernels/merge_math.hpp cat_entry_score), ties to the lower index; the CUDA twin is kernels/select.cu. Released
// variant ("CAT as released"): norm scales take the c largest whatever their sign, shifts the entries whose score
// (K - 1) T_k[z]^2 reaches a sorted position (on the host only: the GPU twin waits for a caller).
#include <cstdint>
#include <vector>

#include "methods/method.hpp"

namespace cm {

// Which of the ranked scores a top-c mask takes: those > 0 (the paper), or the c best whatever their sign.
enum class MaskPick { Positive, AnySign };

// masks[k]: task k's entries, best first. xsq: per task, the per-entry statistic of xhat^2 the norm_scale score
// weighs T_i^2 by (sums over rows; the released variant's means); empty for a shift unit.
std::vector<std::vector<int64_t>> cat_entry_masks(const TaskVectors& tasks, const std::vector<const double*>& xsq,
                                                  double lambda, int c, MaskPick pick = MaskPick::Positive);

// The released variant's shift masks: for each task k the entries z whose score g_z = (K - 1) T_k[z]^2 reaches
// the value at 1-based position d - c of the scores sorted ascending (c + 1 entries without ties), every entry
// when d - c < 1; in ascending z.
std::vector<std::vector<int64_t>> released_shift_masks(const TaskVectors& tasks, int c);

// Applies every mask, all computed from the original task vectors first.
void apply_entry_masks(const std::vector<std::vector<int64_t>>& masks, TaskVectors& tasks);

}  // namespace cm
