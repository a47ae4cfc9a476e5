#include "backend/cuda/cuda_backend.hpp"

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "activations_cuda.hpp"
#include "attention_cuda.hpp"
#include "backend/cuda/cuda_context.hpp"
#include "backend/cuda/cuda_linalg.hpp"
#include "backend/cuda/library_check.hpp"
#include "common/error.hpp"
#include "norms_cuda.hpp"
#include "rotary_cuda.hpp"

namespace cm {
namespace {

class CudaBackend : public Backend {
 public:
  explicit CudaBackend(int device) : ctx_(device), linalg_(ctx_, LinalgOptions{}) {}
  const char* name() const override { return "cuda"; }

  // Row-major y[m, n] = x[m, k] w[n, k]^T + b is column-major y^T = w^T-view^T x^T-view: SGEMM (T, N).
  // The bias goes in first as the rank-1 product b 1^T, and SGEMM adds onto it.
  void linear(const float* x, const float* w, const float* b, float* y, int64_t m, int64_t n, int64_t k) override {
    const float* dx = ctx_.upload(x_, x, static_cast<size_t>(m * k));
    const float* dw = ctx_.upload(w_, w, static_cast<size_t>(n * k));
    float* dy = y_.get(static_cast<size_t>(m * n));
    const float one = 1.0f, zero = 0.0f;
    if (b) {
      const float* db = ctx_.upload(b_, b, static_cast<size_t>(n));
      float* ones = ones_.get(static_cast<size_t>(m));
      fill_ones(ones, m);
      CUBLAS_CHECK(cublasSgemm(ctx_.blas(), CUBLAS_OP_N, CUBLAS_OP_N, blas_dim(n), blas_dim(m), 1, &one, db,
                               blas_dim(n), ones, 1, &zero, dy, blas_dim(n)));
    }
    CUBLAS_CHECK(cublasSgemm(ctx_.blas(), CUBLAS_OP_T, CUBLAS_OP_N, blas_dim(n), blas_dim(m), blas_dim(k), &one, dw,
                             blas_dim(k), dx, blas_dim(k), b ? &one : &zero, dy, blas_dim(n)));
    ctx_.copy_out(y, dy, static_cast<size_t>(m * n) * sizeof(float));
  }

  void layer_norm(const float* x, const float* g, const float* b, float eps, float* y, float* xhat_out, int64_t rows,
                  int64_t d) override {
    const size_t n = static_cast<size_t>(rows * d);
    float* dx = ctx_.upload(x_, x, n);
    const float* dg = ctx_.upload(w_, g, static_cast<size_t>(d));
    const float* db = ctx_.upload(b_, b, static_cast<size_t>(d));
    float* dxhat = xhat_out ? y_.get(n) : nullptr;
    gpu::layer_norm(dx, dg, db, eps, dx, dxhat, rows, d, ctx_.stream());  // y overwrites the staged x
    ctx_.copy_out(y, dx, n * sizeof(float));
    if (xhat_out) ctx_.copy_out(xhat_out, dxhat, n * sizeof(float));
  }

  void rms_norm(const float* x, const float* g, float eps, float* y, float* xhat_out, int64_t rows,
                int64_t d) override {
    const size_t n = static_cast<size_t>(rows * d);
    float* dx = ctx_.upload(x_, x, n);
    const float* dg = ctx_.upload(w_, g, static_cast<size_t>(d));
    float* dxhat = xhat_out ? y_.get(n) : nullptr;
    gpu::rms_norm(dx, dg, eps, dx, dxhat, rows, d, ctx_.stream());  // y overwrites the staged x
    ctx_.copy_out(y, dx, n * sizeof(float));
    if (xhat_out) ctx_.copy_out(xhat_out, dxhat, n * sizeof(float));
  }

  void activation(Activation act, float* x, int64_t n) override {
    float* dx = ctx_.upload(x_, x, static_cast<size_t>(n));
    if (act == Activation::QuickGelu) {
      gpu::quick_gelu(dx, n, ctx_.stream());
    } else {
      gpu::gelu(dx, n, ctx_.stream());
    }
    ctx_.copy_out(x, dx, static_cast<size_t>(n) * sizeof(float));
  }

  void silu_gate(const float* gate, const float* up, float* out, int64_t n) override {
    float* dgate = ctx_.upload(x_, gate, static_cast<size_t>(n));
    const float* dup = ctx_.upload(w_, up, static_cast<size_t>(n));
    gpu::silu_gate(dgate, dup, dgate, n, ctx_.stream());  // out overwrites the staged gate
    ctx_.copy_out(out, dgate, static_cast<size_t>(n) * sizeof(float));
  }

  void rotary(float* x, int64_t rows, int64_t seq, int64_t heads, int64_t head_dim, const float* inv_freq) override {
    const size_t n = static_cast<size_t>(rows * heads * head_dim);
    float* dx = ctx_.upload(x_, x, n);
    const float* dfreq = ctx_.upload(w_, inv_freq, static_cast<size_t>(head_dim / 2));
    gpu::rotary(dx, rows, seq, heads, head_dim, dfreq, ctx_.stream());
    ctx_.copy_out(x, dx, n * sizeof(float));
  }

  void attention(const float* q, const float* k, const float* v, float* out, const AttentionShape& s,
                 const AttentionMask& mask) override {
    const size_t n = static_cast<size_t>(s.batch * s.seq * s.heads * s.head_dim);
    const size_t kv_n = static_cast<size_t>(s.batch * s.seq * s.kv_heads * s.head_dim);
    const float* dq = ctx_.upload(x_, q, n);
    const float* dk = ctx_.upload(w_, k, kv_n);
    const float* dv = ctx_.upload(b_, v, kv_n);
    float* dout = y_.get(n);
    AttentionMask dmask = mask;  // the same bounds, the key mask staged on the device
    if (mask.keys) dmask.keys = ctx_.upload(keys_, mask.keys, static_cast<size_t>(s.batch * s.seq));
    gpu::attention(dq, dk, dv, dout, s, dmask, ctx_.stream());
    ctx_.copy_out(out, dout, n * sizeof(float));
  }

  Linalg& linalg() override { return linalg_; }

 private:
  void fill_ones(float* ones, int64_t m) {
    if (ones_filled_ >= m) return;
    const std::vector<float> host(static_cast<size_t>(m), 1.0f);
    ctx_.copy_in(ones, host.data(), host.size() * sizeof(float));
    ones_filled_ = m;
  }

  CudaContext ctx_;
  CudaLinalg linalg_;
  // Staging buffers, reused by every call: x_ inputs / activations, w_ weights (and rotary's table), b_
  // biases, y_ outputs, keys_ attention's key mask.
  DeviceBuffer<float> x_, w_, b_, y_, ones_;
  DeviceBuffer<uint8_t> keys_;
  int64_t ones_filled_ = 0;
};

}  // namespace

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the error: no driver or no device means no GPU, not a failure
    return 0;
  }
  return n;
}

std::unique_ptr<Backend> make_cuda_backend(int local_rank) {
  const int n = cuda_device_count();
  CM_ASSERT(n > 0 && local_rank >= 0);
  return std::make_unique<CudaBackend>(local_rank % n);
}

}  // namespace cm
