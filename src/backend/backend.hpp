#pragma once
// The compute backend interface (ggml-style): the forward pass calls these ops and nothing else.
// The CPU implementation (OpenBLAS) is the reference every other backend is tested against.
// Pointers are host memory in this version; the CUDA backend stages them through device buffers it reuses
// across calls (docs/DESIGN.md "CUDA").
#include <cstdint>
#include <memory>
#include <string>

#include "arch/clip_vit.hpp"
#include "attention_mask.hpp"

namespace cm {

class Linalg;  // methods/linalg.hpp

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // y[m, n] = x[m, k] * w[n, k]^T + b[n]  (b may be nullptr).
  virtual void linear(const float* x, const float* w, const float* b, float* y, int64_t m, int64_t n,
                      int64_t k) = 0;

  // Row-wise LayerNorm of x[rows, d]: xhat = (x - mean) / sqrt(var + eps) (biased variance),
  // y = xhat * g + b. xhat_out may be nullptr; y may alias x.
  virtual void layer_norm(const float* x, const float* g, const float* b, float eps, float* y,
                          float* xhat_out, int64_t rows, int64_t d) = 0;

  // Row-wise RMSNorm of x[rows, d]: xhat = x / sqrt(mean(x^2) + eps), y = xhat * g. xhat_out may be
  // nullptr; y may alias x.
  virtual void rms_norm(const float* x, const float* g, float eps, float* y, float* xhat_out, int64_t rows,
                        int64_t d) = 0;

  // In place on n elements.
  virtual void activation(Activation act, float* x, int64_t n) = 0;

  // out[i] = silu(gate[i]) * up[i] on n elements (LLaMA's MLP); out may alias gate or up.
  virtual void silu_gate(const float* gate, const float* up, float* out, int64_t n) = 0;

  // Rotary position embedding in place on x[rows, heads * head_dim] (kernels/rotary.hpp): row r holds the
  // token at position r % seq; inv_freq has head_dim / 2 entries.
  virtual void rotary(float* x, int64_t rows, int64_t seq, int64_t heads, int64_t head_dim,
                      const float* inv_freq) = 0;

  // Multi-head softmax attention, grouped-query when s.kv_heads < s.heads (kernels/attention_mask.hpp):
  // out = softmax(q k^T / sqrt(head_dim) over the keys `mask` lets each query see) v, per (sequence, head).
  // mask.keys is host memory here. A query that sees no key gets zeros.
  virtual void attention(const float* q, const float* k, const float* v, float* out, const AttentionShape& s,
                         const AttentionMask& mask) = 0;

  // The methods' linear algebra on the same device (MergeContext::linalg).
  virtual Linalg& linalg() = 0;

  // Whether several threads may run ops at once, each on its own data (the CPU: the job then runs one task's
  // forward per thread, each on one BLAS thread); a GPU backend runs one stream.
  virtual bool concurrent_callers() const { return false; }
};

// Whether backend `name` runs on a GPU: "cuda", or "auto" when this build has CUDA and a GPU is visible.
bool backend_uses_cuda(const std::string& name);

// name: "cpu", "cuda", or "auto": cuda when this build has it and a GPU is visible, else cpu.
// threads: 0 = the BLAS default (all cores unless OPENBLAS_NUM_THREADS says otherwise). local_rank: the
// process's rank within its node; a GPU backend takes device local_rank % device count.
// Throws cm::Error naming `where` for an unknown or unavailable backend.
std::unique_ptr<Backend> make_backend(const std::string& name, int threads, const std::string& where,
                                      int local_rank = 0);

}  // namespace cm
