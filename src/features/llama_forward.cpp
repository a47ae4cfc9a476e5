#include "features/llama_forward.hpp"

#include <algorithm>

#include "common/error.hpp"

namespace cm {

namespace {

std::string site(int64_t layer, const char* which) { return "layers." + std::to_string(layer) + "." + which; }

}  // namespace

LlamaForward::LlamaForward(const LlamaConfig& cfg, Backend& backend)
    : cfg_(cfg), inv_freq_(rope_inv_freq(cfg.rope, cfg.head_dim)), be_(backend) {
  CM_ASSERT(cfg_.heads > 0 && cfg_.kv_heads > 0 && cfg_.heads % cfg_.kv_heads == 0 && cfg_.head_dim % 2 == 0);
  CM_ASSERT(static_cast<int64_t>(cfg_.blocks.size()) == cfg_.layers &&
            static_cast<int64_t>(cfg_.window.size()) == cfg_.layers);
}

void LlamaForward::check_input(const Exemplars& x, const std::string& where) const {
  check_token_ids(x, cfg_.vocab, "llama", where);
}

int64_t LlamaForward::hidden_elements(int, const Exemplars& x) const { return x.n * x.length * cfg_.hidden; }

// Every site records every real token; the cost models want a count per sequence.
int64_t LlamaForward::rows_per_exemplar(const Site&, const Exemplars& x) const { return real_tokens_per_sequence(x); }

double LlamaForward::matmul_flops(const Exemplars& x) const {
  const double n = static_cast<double>(x.n), len = static_cast<double>(x.length), rows = n * len;
  const double d = static_cast<double>(cfg_.hidden), f = static_cast<double>(cfg_.intermediate);
  const double hd = static_cast<double>(cfg_.head_dim), qd = static_cast<double>(cfg_.heads) * hd;
  const double kvd = static_cast<double>(cfg_.kv_heads) * hd;
  // q, k, v, o_proj; gate, up, down. The embedding is a lookup and lm_head is not run.
  const double linears = 2 * rows * (2 * d * qd + 2 * d * kvd + 3 * d * f);
  // Every query against every key of its sequence (the mask only zeroes probabilities).
  const double attention = 2 * 2 * n * static_cast<double>(cfg_.heads) * len * len * hd;
  return static_cast<double>(cfg_.layers) * (linears + attention);
}

void LlamaForward::stage(int s, const WeightSource& w, const Exemplars& x, std::vector<float>& hidden,
                         FeatureSink* sink) const {
  CM_ASSERT(s >= 0 && s < num_stages() && x.kind == InputKind::Tokens);
  if (s == 0)
    embed(w, x, hidden);
  else if (s <= cfg_.layers)
    block(s - 1, w, x, hidden, sink);
  else
    final(w, x, hidden, sink);
}

void LlamaForward::norm(const WeightSource& w, const std::string& g, const std::string& site_name,
                        const std::vector<float>& x, std::vector<float>& y, const Exemplars& ex,
                        FeatureSink* sink) const {
  const int64_t d = cfg_.hidden, rows = static_cast<int64_t>(x.size()) / d;
  const WeightTensor gv = fetch_weight(w, g, d);
  const bool want = sink && sink->wants(site_name);
  std::vector<float> xhat(want ? x.size() : 0);
  y.resize(x.size());
  be_.rms_norm(x.data(), gv->data(), cfg_.eps, y.data(), want ? xhat.data() : nullptr, rows, d);
  if (want) record_tokens(sink, site_name, SiteKind::NormInput, xhat.data(), d, ex);
}

void LlamaForward::embed(const WeightSource& w, const Exemplars& x, std::vector<float>& hidden) const {
  const int64_t d = cfg_.hidden, rows = x.n * x.length;
  const WeightTensor table_t = fetch_weight(w, cfg_.embed, cfg_.vocab * d);
  const std::vector<float>& table = *table_t;
  hidden.resize(static_cast<size_t>(rows * d));
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t id = x.ids[static_cast<size_t>(r)];
    CM_ASSERT(id >= 0 && id < cfg_.vocab);  // check_input ran
    std::copy(table.begin() + id * d, table.begin() + (id + 1) * d, hidden.begin() + r * d);
  }
}

void LlamaForward::block(int64_t i, const WeightSource& w, const Exemplars& ex, std::vector<float>& x,
                         FeatureSink* sink) const {
  const LlamaBlockNames& nm = cfg_.blocks[static_cast<size_t>(i)];
  const int64_t d = cfg_.hidden, rows = ex.n * ex.length, f = cfg_.intermediate, hd = cfg_.head_dim;
  const int64_t qd = cfg_.heads * hd, kvd = cfg_.kv_heads * hd;
  CM_ASSERT(x.size() == static_cast<size_t>(rows * d));
  const bool padded = ex.real_tokens() < rows;

  // Attention half: x = x + o_proj(attn(rope(q), rope(k), v)) of h = RMSNorm-1(x).
  std::vector<float> h, y(static_cast<size_t>(rows * d));
  norm(w, nm.ln1, site(i, "ln1"), x, h, ex, sink);
  record_tokens(sink, site(i, "attn_in"), SiteKind::LinearInput, h.data(), d, ex);
  std::vector<float> heads_out(static_cast<size_t>(rows * qd));
  {
    std::vector<float> q(static_cast<size_t>(rows * qd)), k(static_cast<size_t>(rows * kvd)),
        v(static_cast<size_t>(rows * kvd));
    linear_layer(be_, w, nm.q_w, nm.q_b, h.data(), q.data(), rows, qd, d);
    linear_layer(be_, w, nm.k_w, nm.k_b, h.data(), k.data(), rows, kvd, d);
    linear_layer(be_, w, nm.v_w, nm.v_b, h.data(), v.data(), rows, kvd, d);
    be_.rotary(q.data(), rows, ex.length, cfg_.heads, hd, inv_freq_.data());
    be_.rotary(k.data(), rows, ex.length, cfg_.kv_heads, hd, inv_freq_.data());
    const AttentionMask mask{true, cfg_.window[static_cast<size_t>(i)], padded ? ex.mask.data() : nullptr};
    be_.attention(q.data(), k.data(), v.data(), heads_out.data(),
                  AttentionShape{ex.n, ex.length, cfg_.heads, cfg_.kv_heads, hd}, mask);
  }
  record_tokens(sink, site(i, "attn_out"), SiteKind::LinearInput, heads_out.data(), qd, ex);
  linear_layer(be_, w, nm.o_w, nm.o_b, heads_out.data(), y.data(), rows, d, qd);
  heads_out = std::vector<float>();
  add_residual(x, y);

  // MLP half: x = x + down_proj(silu(gate_proj(h)) * up_proj(h)) of h = RMSNorm-2(x).
  norm(w, nm.ln2, site(i, "ln2"), x, h, ex, sink);
  record_tokens(sink, site(i, "mlp_in"), SiteKind::LinearInput, h.data(), d, ex);
  std::vector<float> gate(static_cast<size_t>(rows * f));
  {
    std::vector<float> up(static_cast<size_t>(rows * f));
    linear_layer(be_, w, nm.gate_w, nm.gate_b, h.data(), gate.data(), rows, f, d);
    linear_layer(be_, w, nm.up_w, nm.up_b, h.data(), up.data(), rows, f, d);
    be_.silu_gate(gate.data(), up.data(), gate.data(), rows * f);
  }
  record_tokens(sink, site(i, "mlp_act"), SiteKind::LinearInput, gate.data(), f, ex);
  linear_layer(be_, w, nm.down_w, nm.down_b, gate.data(), y.data(), rows, d, f);
  add_residual(x, y);
}

void LlamaForward::final(const WeightSource& w, const Exemplars& ex, std::vector<float>& x, FeatureSink* sink) const {
  const int64_t d = cfg_.hidden;
  std::vector<float> y;
  norm(w, cfg_.final_norm, "final.norm", x, y, ex, sink);
  // Pooled: each sequence's last real token (what a sequence-classification head reads).
  x.assign(static_cast<size_t>(ex.n * d), 0.0f);
  for (int64_t s = 0; s < ex.n; ++s) {
    int64_t last = ex.length - 1;
    while (last > 0 && !ex.mask[static_cast<size_t>(s * ex.length + last)]) --last;
    const auto row = y.begin() + (s * ex.length + last) * d;
    std::copy(row, row + d, x.begin() + s * d);
  }
}

}  // namespace cm
