#include "backend/cpu_backend.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "activations.hpp"
#include "common/error.hpp"
#include "common/parallel.hpp"
#include "layernorm.hpp"
#include "methods/linalg.hpp"
#include "softmax.hpp"

namespace cm {
namespace {

class CpuBackend : public Backend {
 public:
  const char* name() const override { return "cpu"; }

  void linear(const float* x, const float* w, const float* b, float* y, int64_t m, int64_t n,
              int64_t k) override {
    // The bias is written first and sgemm adds onto it (beta = 1), saving a pass over y.
    if (b) {
      for (int64_t r = 0; r < m; ++r) std::copy(b, b + n, y + r * n);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blas(m), blas(n), blas(k), 1.0f, x, blas(k), w,
                blas(k), b ? 1.0f : 0.0f, y, blas(n));
  }

  void layer_norm(const float* x, const float* g, const float* b, float eps, float* y, float* xhat_out,
                  int64_t rows, int64_t d) override {
    for (int64_t r = 0; r < rows; ++r) {
      double mean = 0.0, rstd = 0.0;
      row_moments(x + r * d, d, eps, &mean, &rstd);
      layer_norm_row(x + r * d, g, b, mean, rstd, y + r * d, xhat_out ? xhat_out + r * d : nullptr, d);
    }
  }

  void activation(Activation act, float* x, int64_t n) override {
    if (act == Activation::QuickGelu) {
      for (int64_t i = 0; i < n; ++i) x[i] = quick_gelu(x[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) x[i] = gelu(x[i]);
    }
  }

  void attention(const float* q, const float* k, const float* v, float* out, int64_t batch, int64_t seq,
                 int64_t heads, int64_t head_dim) override {
    // Each (image, head) is a strided [seq, head_dim] view of the merged-head rows, so no copies are
    // made; the 1/sqrt(head_dim) scale rides on sgemm's alpha.
    const int64_t ld = heads * head_dim;
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
    std::vector<float> p(static_cast<size_t>(seq * seq));
    for (int64_t img = 0; img < batch; ++img) {
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t off = img * seq * ld + h * head_dim;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blas(seq), blas(seq), blas(head_dim), scale,
                    q + off, blas(ld), k + off, blas(ld), 0.0f, p.data(), blas(seq));
        for (int64_t r = 0; r < seq; ++r) softmax_row(p.data() + r * seq, seq);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blas(seq), blas(head_dim), blas(seq), 1.0f,
                    p.data(), blas(seq), v + off, blas(ld), 0.0f, out + off, blas(ld));
      }
    }
  }

  Linalg& linalg() override { return cpu_linalg(); }
  bool concurrent_callers() const override { return true; }

 private:
  // OpenBLAS takes blasint (32-bit in this build) sizes; every CLIP dimension and batch the job forms fits.
  static blasint blas(int64_t v) {
    CM_ASSERT(v >= 0 && v <= std::numeric_limits<blasint>::max());
    return static_cast<blasint>(v);
  }
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) {
  if (threads > 0) openblas_set_num_threads(threads);
  set_cpu_threads(threads);
  return std::make_unique<CpuBackend>();
}

}  // namespace cm
