// One warp per query row, kRows rows per block, all of one (image, head). Per tile of kAttentionTile keys:
// lane j scores key j, the warp takes the tile maximum and the weights' sum, and every lane accumulates its
// own head dimensions (lane, lane + 32, ...) over the tile's values: attention_row_online's steps.
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

__global__ void attention_kernel(const float* q, const float* k, const float* v, float* out, int64_t seq, int heads,
                                 int hd, float scale) {
  extern __shared__ float smem[];
  const int ks_ld = hd + 1;
  float* ks = smem;
  float* vs = ks + kAttentionTile * ks_ld;
  float* qs = vs + kAttentionTile * hd;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t ld = static_cast<int64_t>(heads) * hd;
  const int64_t base = blockIdx.z * seq * ld + static_cast<int64_t>(blockIdx.y) * hd;  // (token t, dim d): + t*ld + d
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRows + warp;
  const bool active = row < seq;  // the same for the whole warp
  float* qrow = qs + warp * hd;
  if (active)
    for (int d = lane; d < hd; d += 32) qrow[d] = q[base + row * ld + d];

  float acc[kMaxPerLane];
#pragma unroll
  for (int t = 0; t < kMaxPerLane; ++t) acc[t] = 0.0f;
  OnlineSoftmax st = online_softmax_start();
  for (int64_t t0 = 0; t0 < seq; t0 += kAttentionTile) {
    const int n = static_cast<int>(seq - t0 < kAttentionTile ? seq - t0 : kAttentionTile);
    __syncthreads();  // the previous tile is consumed (and the query rows are written)
    for (int i = threadIdx.x; i < n * hd; i += blockDim.x) {
      const int j = i / hd, d = i % hd;
      ks[j * ks_ld + d] = k[base + (t0 + j) * ld + d];
      vs[j * hd + d] = v[base + (t0 + j) * ld + d];
    }
    __syncthreads();
    if (!active) continue;
    float s = -INFINITY;
    if (lane < n) {
      float dot = 0.0f;
      for (int d = 0; d < hd; ++d) dot += qrow[d] * ks[lane * ks_ld + d];
      s = scale * dot;
    }
    const float r = online_softmax_rescale(&st, warp_max(s));
    const float p = lane < n ? online_softmax_weight(st, s) : 0.0f;
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
  const float inv = 1.0f / st.l;
#pragma unroll
  for (int t = 0; t < kMaxPerLane; ++t) {
    const int d = lane + 32 * t;
    if (d < hd) out[base + row * ld + d] = acc[t] * inv;
  }
}

}  // namespace

void attention(const float* q, const float* k, const float* v, float* out, int64_t batch, int64_t seq, int64_t heads,
               int64_t head_dim, cudaStream_t stream) {
  CM_ASSERT(head_dim > 0 && head_dim <= 32 * kMaxPerLane && heads <= 65535 && batch <= 65535);
  if (batch == 0 || seq == 0) return;
  const int hd = static_cast<int>(head_dim);
  const size_t bytes = shared_bytes(hd);
  if (bytes > 48 * 1024)  // beyond the default limit a kernel must opt in
    CUDA_CHECK(
        cudaFuncSetAttribute(attention_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
  const dim3 grid(static_cast<unsigned>((seq + kRows - 1) / kRows), static_cast<unsigned>(heads),
                  static_cast<unsigned>(batch));
  const float scale = static_cast<float>(1.0 / sqrt(static_cast<double>(head_dim)));
  attention_kernel<<<grid, kRows * 32, bytes, stream>>>(q, k, v, out, seq, static_cast<int>(heads), hd, scale);
  CUDA_LAUNCH_CHECK();
}

}  // namespace cm::gpu
