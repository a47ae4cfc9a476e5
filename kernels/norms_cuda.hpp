#pragma once
// LayerNorm and RMSNorm forward on the GPU, one block per row (norms.cu); the CPU twins are
// layernorm.hpp and rmsnorm.hpp. Device pointers; y may alias x; xhat may be nullptr.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace cm::gpu {

void layer_norm(const float* x, const float* g, const float* b, float eps, float* y, float* xhat, int64_t rows,
                int64_t d, cudaStream_t stream);

void rms_norm(const float* x, const float* g, float eps, float* y, float* xhat, int64_t rows, int64_t d,
              cudaStream_t stream);

}  // namespace cm::gpu
