// One warp per query row, kRows rows per block, all of one (sequence, query head); the block reads the
// key/value head that query head shares (grouped-query attention). Per tile of kAttentionTile keys: lane j
// scores key j (-inf where the mask hides it), the warp takes the tile maximum and the weights' sum, and
// every lane accumulates its own head dimensions (lane, lane + 32, ...) over the tile's values:
// attention_row_online's steps. Tiles that no row of the block may see are skipped (attention_key_range).
#include "attention_cuda.hpp"
#include "common/error.hpp"
#include "cuda_check.hpp"
#include "device_util.cuh"
#include "softmax.hpp"

namespace cm::gpu {
namespace {

constexpr int kRows = 8;        // query rows (warps) per block
constexpr int kMaxPerLane = 8;  // head dimensions per lane: head_dim <= 256

// Shared memory: keys [tile][hd + 1] (the padding keeps lane j's reads of key j on distinct banks),
// values [tile][hd], the block's query rows [kRows][hd].
size_t shared_bytes(int hd) {
  return sizeof(float) * (static_cast<size_t>(kAttentionTile) * (2 * hd + 1) + static_cast<size_t>(kRows) * hd);
}

__global__ void attention_kernel(const float* q, const float* k, const float* v, float* out, AttentionShape s,
                                 AttentionMask mask, float scale) {
  extern __shared__ float smem[];
  const int hd = static_cast<int>(s.head_dim);
  const int ks_ld = hd + 1;
  float* ks = smem;
  float* vs = ks + kAttentionTile * ks_ld;
  float* qs = vs + kAttentionTile * hd;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t b = blockIdx.z, seq = s.seq, ld = s.heads * hd, kv_ld = s.kv_heads * hd;
  const int64_t q_base = b * seq * ld + static_cast<int64_t>(blockIdx.y) * hd;      // (t, d): + t*ld + d
  const int64_t kv_base = b * seq * kv_ld + attention_kv_head(s, blockIdx.y) * hd;  // (t, d): + t*kv_ld + d
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kRows, row = first + warp;
  const bool active = row < seq;  // the same for the whole warp
  float* qrow = qs + warp * hd;
  if (active)
    for (int d = lane; d < hd; d += 32) qrow[d] = q[q_base + row * ld + d];
  int64_t begin = 0, end = 0;
  attention_key_range(mask, seq, first, first + kRows <= seq ? first + kRows - 1 : seq - 1, &begin, &end);

  float acc[kMaxPerLane];
#pragma unroll
  for (int t = 0; t < kMaxPerLane; ++t) acc[t] = 0.0f;
  OnlineSoftmax st = online_softmax_start();
  for (int64_t t0 = begin; t0 < end; t0 += kAttentionTile) {
    const int n = static_cast<int>(end - t0 < kAttentionTile ? end - t0 : kAttentionTile);
    __syncthreads();  // the previous tile is consumed (and the query rows are written)
    for (int i = threadIdx.x; i < n * hd; i += blockDim.x) {
      const int j = i / hd, d = i % hd;
      ks[j * ks_ld + d] = k[kv_base + (t0 + j) * kv_ld + d];
      vs[j * hd + d] = v[kv_base + (t0 + j) * kv_ld + d];
    }
    __syncthreads();
    if (!active) continue;
    float sc = -INFINITY;  // also for the lanes past the tile's last key
    if (lane < n && attends(mask, b, seq, row, t0 + lane)) {
      float dot = 0.0f;
      for (int d = 0; d < hd; ++d) dot += qrow[d] * ks[lane * ks_ld + d];
      sc = scale * dot;
    }
    const float r = online_softmax_rescale(&st, warp_max(sc));
    const float p = online_softmax_weight(st, sc);
    st.l += warp_sum(p);
#pragma unroll
    for (int t = 0; t < kMaxPerLane; ++t) acc[t] *= r;
    for (int j = 0; j < n; ++j) {
      const float pj = __shfl_sync(0xffffffffu, p, j);
#pragma unroll
      for (int t = 0; t < kMaxPerLane; ++t) {
        const int d = lane + 32 * t;
        if (d < hd) acc[t] += pj * vs[j * hd + d];
      }
    }
  }
  if (!active) return;
  const float inv = st.l > 0.0f ? 1.0f / st.l : 0.0f;  // a row that saw no key: zeros
#pragma unroll
  for (int t = 0; t < kMaxPerLane; ++t) {
    const int d = lane + 32 * t;
    if (d < hd) out[q_base + row * ld + d] = acc[t] * inv;
  }
}

}  // namespace

void attention(const float* q, const float* k, const float* v, float* out, const AttentionShape& s,
               const AttentionMask& mask, cudaStream_t stream) {
  CM_ASSERT(s.head_dim > 0 && s.head_dim <= 32 * kMaxPerLane && s.heads <= 65535 && s.batch <= 65535);
  CM_ASSERT(s.kv_heads > 0 && s.heads % s.kv_heads == 0);
  if (s.batch == 0 || s.seq == 0 || s.heads == 0) return;
  const int hd = static_cast<int>(s.head_dim);
  const size_t bytes = shared_bytes(hd);
  if (bytes > 48 * 1024)  // beyond the default limit a kernel must opt in
    CUDA_CHECK(
        cudaFuncSetAttribute(attention_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
  const dim3 grid(static_cast<unsigned>((s.seq + kRows - 1) / kRows), static_cast<unsigned>(s.heads),
                  static_cast<unsigned>(s.batch));
  attention_kernel<<<grid, kRows * 32, bytes, stream>>>(q, k, v, out, s, mask, attention_scale(s.head_dim));
  CUDA_LAUNCH_CHECK();
}

}  // namespace cm::gpu
