#include "backend/cpu_backend.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "activations.hpp"
#include "common/cpu_clones.hpp"
#include "common/error.hpp"
#include "common/parallel.hpp"
#include "layernorm.hpp"
#include "rmsnorm.hpp"
#include "rotary.hpp"
#include "methods/linalg.hpp"
#include "softmax.hpp"

namespace cm {
namespace {

// scores[r][j] = scale * sum_d q[r][d] kt[d][j] (q: rows of stride ld; kt: K transposed, [hd, seq]).
CM_CPU_CLONES void attention_scores(const float* __restrict q, int64_t ld, const float* __restrict kt, int64_t seq,
                                    int64_t hd, float scale, float* __restrict scores) {
  for (int64_t r = 0; r < seq; ++r) {
    float* row = scores + r * seq;
    std::fill(row, row + seq, 0.0f);
    for (int64_t d = 0; d < hd; ++d) {
      const float x = q[r * ld + d];
      const float* kd = kt + d * seq;
      for (int64_t j = 0; j < seq; ++j) row[j] += x * kd[j];
    }
    for (int64_t j = 0; j < seq; ++j) row[j] *= scale;
  }
}

// out[r][:] = sum_j p[r][j] v[j][:] (v and out: rows of stride kv_ld and ld, hd wide).
CM_CPU_CLONES void attention_values(const float* __restrict p, int64_t seq, const float* __restrict v, int64_t kv_ld,
                                    int64_t hd, float* __restrict out, int64_t ld) {
  for (int64_t r = 0; r < seq; ++r) {
    float* o = out + r * ld;
    std::fill(o, o + hd, 0.0f);
    for (int64_t j = 0; j < seq; ++j) {
      const float w = p[r * seq + j];
      const float* vj = v + j * kv_ld;
      for (int64_t d = 0; d < hd; ++d) o[d] += w * vj[d];
    }
  }
}

// softmax_row on each of `rows` rows of p (seq wide); a row with no visible key (`visible` false) is all 0.
CM_CPU_CLONES void softmax_rows(float* __restrict p, int64_t rows, int64_t seq, const uint8_t* visible) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = p + r * seq;
    if (visible[r])
      softmax_row(row, seq);
    else
      std::fill(row, row + seq, 0.0f);
  }
}

CM_CPU_CLONES void quick_gelu_all(float* __restrict x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = quick_gelu(x[i]);
}

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

  void rms_norm(const float* x, const float* g, float eps, float* y, float* xhat_out, int64_t rows,
                int64_t d) override {
    for (int64_t r = 0; r < rows; ++r)
      rms_norm_row(x + r * d, g, eps, y + r * d, xhat_out ? xhat_out + r * d : nullptr, d);
  }

  void activation(Activation act, float* x, int64_t n) override {
    if (act == Activation::QuickGelu) {
      quick_gelu_all(x, n);
    } else {
      for (int64_t i = 0; i < n; ++i) x[i] = gelu(x[i]);
    }
  }

  void silu_gate(const float* gate, const float* up, float* out, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) out[i] = cm::silu_gate(gate[i], up[i]);
  }

  void rotary(float* x, int64_t rows, int64_t seq, int64_t heads, int64_t head_dim, const float* inv_freq) override {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t h = 0; h < heads; ++h) rope_head(x + (r * heads + h) * head_dim, head_dim, r % seq, inv_freq);
  }

  void attention(const float* q, const float* k, const float* v, float* out, const AttentionShape& s,
                 const AttentionMask& mask) override {
    // Each (sequence, head) is a strided [seq, head_dim] view of the merged-head rows. Its products are far
    // too small for sgemm's per-call cost (CLIP: 37 x 37 x 64), so they are plain loops that vectorise along
    // the keys (scores, from a transposed copy of K) and along head_dim (values), each sum in index order.
    // Keys a query may not see get -inf before the softmax (exp gives exactly 0, as transformers' additive
    // minimum does).
    CM_ASSERT(s.kv_heads > 0 && s.heads % s.kv_heads == 0);
    const int64_t seq = s.seq, hd = s.head_dim, ld = s.heads * hd, kv_ld = s.kv_heads * hd;
    const bool masked = mask.causal || mask.window > 0 || mask.keys != nullptr;
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
    std::vector<float> p(static_cast<size_t>(seq * seq)), kt(static_cast<size_t>(hd * seq));
    std::vector<uint8_t> visible(static_cast<size_t>(seq), 1);  // per query row: sees at least one key
    for (int64_t b = 0; b < s.batch; ++b) {
      for (int64_t h = 0; h < s.heads; ++h) {
        const float* qh = q + b * seq * ld + h * hd;
        const int64_t kv_off = b * seq * kv_ld + attention_kv_head(s, h) * hd;
        float* oh = out + b * seq * ld + h * hd;
        for (int64_t j = 0; j < seq; ++j)
          for (int64_t d = 0; d < hd; ++d) kt[static_cast<size_t>(d * seq + j)] = k[kv_off + j * kv_ld + d];
        attention_scores(qh, ld, kt.data(), seq, hd, scale, p.data());
        if (masked)
          for (int64_t r = 0; r < seq; ++r) {
            float* row = p.data() + r * seq;
            visible[static_cast<size_t>(r)] = 0;
            for (int64_t j = 0; j < seq; ++j) {
              if (attends(mask, b, seq, r, j))
                visible[static_cast<size_t>(r)] = 1;
              else
                row[j] = -std::numeric_limits<float>::infinity();
            }
          }
        softmax_rows(p.data(), seq, seq, visible.data());
        attention_values(p.data(), seq, v + kv_off, kv_ld, hd, oh, ld);
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
