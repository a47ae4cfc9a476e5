#pragma once
// Rotary position embedding on the GPU (rotary.cu), one thread per rotated pair; CPU twin rope_head
// (rotary.hpp). x: device [rows, heads * head_dim] in place; row r holds the token at position r % seq;
// inv_freq: device, head_dim / 2 floats (the host's table, so both turn by the same angles).
#include <cuda_runtime_api.h>

#include <cstdint>

namespace cm::gpu {

void rotary(float* x, int64_t rows, int64_t seq, int64_t heads, int64_t head_dim, const float* inv_freq,
            cudaStream_t stream);

}  // namespace cm::gpu
