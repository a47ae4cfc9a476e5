#pragma once
// MLP activations on the GPU (activations.cu), element by element through activations.hpp. Device pointers.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace cm::gpu {

void gelu(float* x, int64_t n, cudaStream_t stream);        // in place
void quick_gelu(float* x, int64_t n, cudaStream_t stream);  // in place
// out = silu(gate) * up; out may alias gate or up.
void silu_gate(const float* gate, const float* up, float* out, int64_t n, cudaStream_t stream);

}  // namespace cm::gpu
