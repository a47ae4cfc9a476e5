#pragma once
// Task vectors on the GPU (task_vector.cu): out = expert - base through task_vector.hpp, with the lowest
// index of a NaN or infinite entry, the element the CPU names in its error. Device pointers.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace cm::gpu {

// Returns that lowest index, or -1 when every entry is finite. flag: one device word of scratch.
// Waits for the stream.
int64_t task_vector(const float* expert, const float* base, float* out, int64_t n, unsigned long long* flag,
                    cudaStream_t stream);

}  // namespace cm::gpu
