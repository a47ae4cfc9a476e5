#pragma once
// Multi-head softmax attention without mask on the GPU, flash style (attention.cu): keys and values pass
// through shared memory kAttentionTile rows at a time and the softmax is folded online, so no [seq, seq]
// score matrix exists. q, k, v, out: device [batch * seq, heads * head_dim] rows; head_dim <= 256.
// The CPU twin of one query row is attention_row_online (softmax.hpp).
#include <cuda_runtime_api.h>

#include <cstdint>

namespace cm::gpu {

void attention(const float* q, const float* k, const float* v, float* out, int64_t batch, int64_t seq, int64_t heads,
               int64_t head_dim, cudaStream_t stream);

}  // namespace cm::gpu
