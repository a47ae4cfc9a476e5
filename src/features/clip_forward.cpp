#include "features/clip_forward.hpp"

#include <algorithm>
#include <string>

#include "common/error.hpp"

namespace cm {
namespace {

void record(FeatureSink* sink, const std::string& site, SiteKind kind, const std::vector<float>& rows, int64_t n,
            int64_t dim) {
  if (sink && sink->wants(site)) sink->record(site, kind, rows.data(), n, dim);
}

}  // namespace

ClipForward::ClipForward(const ClipVisionConfig& cfg, Backend& backend) : cfg_(cfg), be_(backend) {
  CM_ASSERT(cfg_.hidden > 0 && cfg_.heads > 0 && cfg_.hidden % cfg_.heads == 0);
  CM_ASSERT(cfg_.patch_size > 0 && cfg_.image_size >= cfg_.patch_size && cfg_.channels > 0);
  CM_ASSERT(static_cast<int>(cfg_.names.blocks.size()) == cfg_.layers);
}

void ClipForward::norm(const WeightSource& w, const std::string& g, const std::string& b, const std::string& site,
                       const float* x, float* y, int64_t rows, FeatureSink* sink) const {
  const int64_t d = cfg_.hidden;
  const WeightTensor gv = fetch_weight(w, g, d), bv = fetch_weight(w, b, d);
  const bool want = sink && sink->wants(site);
  std::vector<float> xhat(want ? static_cast<size_t>(rows * d) : 0);
  be_.layer_norm(x, gv->data(), bv->data(), cfg_.eps, y, want ? xhat.data() : nullptr, rows, d);
  if (want) sink->record(site, SiteKind::NormInput, xhat.data(), rows, d);
}

std::vector<float> ClipForward::embed(const WeightSource& w, const float* pixels, int64_t n_images,
                                      FeatureSink* sink) const {
  const ClipNames& nm = cfg_.names;
  const int64_t c = cfg_.channels, p = cfg_.patch_size, s = cfg_.image_size, g = s / p, np = g * g;
  const int64_t tokens = np + 1, d = cfg_.hidden, kk = c * p * p;

  // The patch conv (stride = kernel, no bias) is a GEMM over patches unrolled in the weight's
  // (channel, ky, kx) order; patches go row by row, as conv output flattened to tokens does.
  std::vector<float> patches(static_cast<size_t>(n_images * np * d));
  {
    std::vector<float> cols(static_cast<size_t>(n_images * np * kk));
    for (int64_t img = 0; img < n_images; ++img) {
      for (int64_t py = 0; py < g; ++py) {
        for (int64_t px = 0; px < g; ++px) {
          float* col = cols.data() + ((img * np) + py * g + px) * kk;
          for (int64_t ch = 0; ch < c; ++ch) {
            for (int64_t ky = 0; ky < p; ++ky) {
              const float* src = pixels + ((img * c + ch) * s + py * p + ky) * s + px * p;
              std::copy(src, src + p, col + (ch * p + ky) * p);
            }
          }
        }
      }
    }
    linear_layer(be_, w, nm.patch_w, "", cols.data(), patches.data(), n_images * np, d, kk);
  }

  const WeightTensor cls_t = fetch_weight(w, nm.class_emb, d), pos_t = fetch_weight(w, nm.pos_emb, tokens * d);
  const std::vector<float>& cls = *cls_t;
  const std::vector<float>& pos = *pos_t;
  std::vector<float> x(static_cast<size_t>(n_images * tokens * d));
  for (int64_t img = 0; img < n_images; ++img) {
    float* xi = x.data() + img * tokens * d;
    for (int64_t j = 0; j < d; ++j) xi[j] = cls[j] + pos[j];
    for (int64_t t = 1; t < tokens; ++t) {
      const float* pe = patches.data() + (img * np + t - 1) * d;
      for (int64_t j = 0; j < d; ++j) xi[t * d + j] = pe[j] + pos[t * d + j];
    }
  }
  norm(w, nm.pre_ln_w, nm.pre_ln_b, clip_site(0, "pre_ln"), x.data(), x.data(), n_images * tokens, sink);
  return x;
}

void ClipForward::block(int i, const WeightSource& w, std::vector<float>& x, int64_t n_images,
                        FeatureSink* sink) const {
  CM_ASSERT(i >= 0 && i < cfg_.layers);
  const ClipBlockNames& nm = cfg_.names.blocks[static_cast<size_t>(i)];
  const int64_t d = cfg_.hidden, tokens = cfg_.tokens(), rows = n_images * tokens, f = cfg_.intermediate;
  const size_t n = static_cast<size_t>(rows * d);
  CM_ASSERT(x.size() == n);

  // Attention half: x = x + out_proj(attn(ln1(x))).
  std::vector<float> h(n), y(n);
  norm(w, nm.ln1_w, nm.ln1_b, clip_site(i, "ln1"), x.data(), h.data(), rows, sink);
  record(sink, clip_site(i, "attn_in"), SiteKind::LinearInput, h, rows, d);
  {
    std::vector<float> q(n), k(n), v(n);
    if (!nm.qkv_w.empty()) {
      // open_clip's fused in_proj: row blocks q, k, v of d rows each (bias likewise).
      const WeightTensor wv = fetch_weight(w, nm.qkv_w, 3 * d * d), bv = fetch_weight(w, nm.qkv_b, 3 * d);
      float* outs[3] = {q.data(), k.data(), v.data()};
      for (int64_t part = 0; part < 3; ++part) {
        be_.linear(h.data(), wv->data() + part * d * d, bv->data() + part * d, outs[part], rows, d, d);
      }
    } else {
      linear_layer(be_, w, nm.q_w, nm.q_b, h.data(), q.data(), rows, d, d);
      linear_layer(be_, w, nm.k_w, nm.k_b, h.data(), k.data(), rows, d, d);
      linear_layer(be_, w, nm.v_w, nm.v_b, h.data(), v.data(), rows, d, d);
    }
    // h (the LayerNorm output) is no longer needed: it takes the merged heads.
    be_.attention(q.data(), k.data(), v.data(), h.data(), AttentionShape{n_images, tokens, cfg_.heads, cfg_.heads, d / cfg_.heads},
                  AttentionMask{});
  }
  record(sink, clip_site(i, "attn_out"), SiteKind::LinearInput, h, rows, d);
  linear_layer(be_, w, nm.out_w, nm.out_b, h.data(), y.data(), rows, d, d);
  add_residual(x, y);

  // MLP half: x = x + fc2(act(fc1(ln2(x)))).
  norm(w, nm.ln2_w, nm.ln2_b, clip_site(i, "ln2"), x.data(), h.data(), rows, sink);
  record(sink, clip_site(i, "mlp_in"), SiteKind::LinearInput, h, rows, d);
  std::vector<float> m(static_cast<size_t>(rows * f));
  linear_layer(be_, w, nm.fc1_w, nm.fc1_b, h.data(), m.data(), rows, f, d);
  be_.activation(cfg_.act, m.data(), rows * f);
  record(sink, clip_site(i, "mlp_act"), SiteKind::LinearInput, m, rows, f);
  linear_layer(be_, w, nm.fc2_w, nm.fc2_b, m.data(), y.data(), rows, d, f);
  add_residual(x, y);
}

std::vector<float> ClipForward::pool(const WeightSource& w, const std::vector<float>& x, int64_t n_images,
                                     FeatureSink* sink) const {
  const ClipNames& nm = cfg_.names;
  const int64_t d = cfg_.hidden, tokens = cfg_.tokens();
  CM_ASSERT(x.size() == static_cast<size_t>(n_images * tokens * d));

  // Only the CLS token is pooled, so only its row goes through the post-LayerNorm.
  std::vector<float> cls(static_cast<size_t>(n_images * d));
  for (int64_t img = 0; img < n_images; ++img) {
    std::copy(x.begin() + img * tokens * d, x.begin() + (img * tokens + 1) * d, cls.begin() + img * d);
  }
  std::vector<float> pooled(cls.size());
  norm(w, nm.post_ln_w, nm.post_ln_b, clip_site(cfg_.layers, "post_ln"), cls.data(), pooled.data(), n_images, sink);
  return pooled;
}

ClipForward::Pooled ClipForward::final(const WeightSource& w, const std::vector<float>& x, int64_t n_images,
                                       FeatureSink* sink) const {
  const ClipNames& nm = cfg_.names;
  const int64_t d = cfg_.hidden;
  Pooled out;
  out.pooled = pool(w, x, n_images, sink);
  if (!nm.proj.empty()) {
    const int64_t pd = cfg_.proj_dim;
    CM_ASSERT(pd > 0);
    std::vector<float> proj = *fetch_weight(w, nm.proj, pd * d);
    if (nm.proj_transposed) {
      // open_clip stores [hidden, proj_dim] for pooled @ proj; linear wants [proj_dim, hidden].
      std::vector<float> t(proj.size());
      for (int64_t r = 0; r < d; ++r) {
        for (int64_t col = 0; col < pd; ++col) t[col * d + r] = proj[r * pd + col];
      }
      proj.swap(t);
    }
    out.embeds.resize(static_cast<size_t>(n_images * pd));
    be_.linear(out.pooled.data(), proj.data(), nullptr, out.embeds.data(), n_images, pd, d);
  }
  return out;
}

void ClipForward::check_input(const Exemplars& x, const std::string& where) const {
  if (x.kind != InputKind::Images) fail(where, "clip_vit takes images (pixel_values), these exemplars are tokens");
  if (x.channels != cfg_.channels || x.height != cfg_.image_size || x.width != cfg_.image_size)
    fail(where, "pixel_values are [N, " + std::to_string(x.channels) + ", " + std::to_string(x.height) + ", " +
                    std::to_string(x.width) + "], the model takes [N, " + std::to_string(cfg_.channels) + ", " +
                    std::to_string(cfg_.image_size) + ", " + std::to_string(cfg_.image_size) + "]");
}

int64_t ClipForward::hidden_elements(int, const Exemplars& x) const {
  return x.n * cfg_.tokens() * cfg_.hidden;
}

int64_t ClipForward::rows_per_exemplar(const Site& site, const Exemplars&) const { return site.rows_per_exemplar; }

void ClipForward::stage(int s, const WeightSource& w, const Exemplars& x, std::vector<float>& hidden,
                        FeatureSink* sink) const {
  CM_ASSERT(s >= 0 && s < num_stages() && x.kind == InputKind::Images);
  if (s == 0)
    hidden = embed(w, x.pixels.data(), x.n, sink);
  else if (s <= cfg_.layers)
    block(s - 1, w, hidden, x.n, sink);
  else
    hidden = pool(w, hidden, x.n, sink);
}

double ClipForward::matmul_flops(const Exemplars& x) const {
  const double n = static_cast<double>(x.n), d = cfg_.hidden, f = cfg_.intermediate, tokens = cfg_.tokens();
  const double patch = static_cast<double>(cfg_.channels) * cfg_.patch_size * cfg_.patch_size;
  const double embed = 2 * n * (tokens - 1) * d * patch;                   // the patch conv as a GEMM
  const double linears = 2 * n * tokens * (4 * d * d + 2 * d * f);        // q, k, v, out_proj; fc1, fc2
  const double attention = 2 * 2 * n * cfg_.heads * tokens * tokens * (d / cfg_.heads);  // Q K^T, P V
  return embed + cfg_.layers * (linears + attention);
}

}  // namespace cm
