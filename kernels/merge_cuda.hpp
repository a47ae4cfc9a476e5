#pragma once
// The element-wise steps of TIES, DARE and PCB on the GPU (merge.cu), through merge_math.hpp and philox.hpp,
// so results and DARE masks equal the CPU's. Device pointers; tasks [K][n], K <= kMaxMergeTasks.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "merge_math.hpp"

namespace cm::gpu {

constexpr int kMaxMergeTasks = 64;

// TIES steps 1-4 (method_common ties_direction, then apply_final_scale) of n entries of a tensor from flat index
// `offset` on: out = base + alpha * ties_combine of the values trims[k] keeps (device [K]).
void ties_merge(const float* base, const float* tasks, const TiesTaskTrim* trims, int K, int64_t n, int64_t offset,
                float majority, TiesDisjoint disjoint, float alpha, float* out, cudaStream_t stream);

// DARE in place: T_k[i] = m * T_k[i] / (1 - p), the mask of element offset + i of the tensor whose name
// hashes to name_hash (methods/dare.cpp).
void dare_drop(float* tasks, int K, int64_t n, uint64_t name_hash, uint32_t seed, int64_t offset, double p,
               cudaStream_t stream);

// PCB step 5 (methods/pcb.cpp): out = base + alpha * pcb_tau, stats: device [K].
void pcb_merge(const float* base, const float* tasks, const PcbTaskStats* stats, int K, int64_t n, float alpha,
               float* out, cudaStream_t stream);

}  // namespace cm::gpu
