#pragma once
// Multi-head softmax attention on the GPU, flash style (attention.cu): keys and values pass through shared
// memory kAttentionTile rows at a time and the softmax is folded online, so no [seq, seq] score matrix
// exists. Grouped-query when s.kv_heads < s.heads, and masked by `mask` (attention_mask.hpp), whose keys
// array is device memory [batch, seq] or nullptr. q, out: device [batch * seq, heads * head_dim] rows; k, v:
// device [batch * seq, kv_heads * head_dim] rows; head_dim <= 256. A query that sees no key gets zeros.
// The CPU twin of one query row is attention_row_online (softmax.hpp).
#include <cuda_runtime_api.h>

#include <cstdint>

#include "attention_mask.hpp"

namespace cm::gpu {

void attention(const float* q, const float* k, const float* v, float* out, const AttentionShape& s,
               const AttentionMask& mask, cudaStream_t stream);

}  // namespace cm::gpu
