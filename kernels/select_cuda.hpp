#pragma once
// CAT's norm_scale and shift masks on the GPU (select.cu); the CPU twin is methods/cat_masks.cpp. Scores
// through cat_entry_score and the top-c order of ranks_before (kernels/merge_math.hpp): larger score first,
// ties to the lower index, only scores > 0. Device pointers; tasks [K][d], K <= kMaxMaskTasks.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace cm::gpu {

constexpr int kMaxMaskTasks = 64;

// masks [K][c]: task k's entries best first; counts[k] how many (fewer than c when fewer scores are > 0).
// xsq [K][d]: per-entry sums of xhat^2 (norm_scale), or nullptr (shift). scores: [K][d] of scratch.
void cat_masks(const float* tasks, const double* xsq, int K, int64_t d, double lambda, int c, double* scores,
               int64_t* masks, int* counts, cudaStream_t stream);

// T_i[z] = 0 for every i != k and z in task k's mask.
void apply_masks(float* tasks, int K, int64_t d, int c, const int64_t* masks, const int* counts, cudaStream_t stream);

}  // namespace cm::gpu
