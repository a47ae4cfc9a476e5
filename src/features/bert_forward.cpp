#include "features/bert_forward.hpp"

#include <algorithm>

#include "common/error.hpp"

namespace cm {

namespace {

std::string site(int64_t layer, const char* which) { return "layers." + std::to_string(layer) + "." + which; }

}  // namespace

BertForward::BertForward(const BertConfig& cfg, Backend& backend) : cfg_(cfg), be_(backend) {
  CM_ASSERT(cfg_.heads > 0 && cfg_.hidden % cfg_.heads == 0 && cfg_.head_dim * cfg_.heads == cfg_.hidden);
  CM_ASSERT(static_cast<int64_t>(cfg_.blocks.size()) == cfg_.layers && cfg_.type_vocab >= 1);
}

std::vector<int64_t> BertForward::positions(const Exemplars& x) const {
  std::vector<int64_t> pos(static_cast<size_t>(x.n * x.length));
  for (int64_t s = 0; s < x.n; ++s) {
    int64_t counted = 0;  // RoBERTa: tokens of this sequence so far that are not padding
    for (int64_t t = 0; t < x.length; ++t) {
      const size_t r = static_cast<size_t>(s * x.length + t);
      if (cfg_.positions == BertPositions::Absolute) {
        pos[r] = t;
      } else {
        // transformers' create_position_ids_from_input_ids: padding is told by its id, not by the mask.
        const bool pad = x.ids[r] == cfg_.pad_token_id;
        pos[r] = pad ? cfg_.pad_token_id : cfg_.pad_token_id + ++counted;
      }
    }
  }
  return pos;
}

void BertForward::check_input(const Exemplars& x, const std::string& where) const {
  check_token_ids(x, cfg_.vocab, "bert", where);
  const std::vector<int64_t> pos = positions(x);
  const auto top = std::max_element(pos.begin(), pos.end());
  if (top != pos.end() && *top >= cfg_.max_positions)
    fail(where, "sequences of " + std::to_string(x.length) + " tokens need position " + std::to_string(*top) +
                    ", past max_position_embeddings " + std::to_string(cfg_.max_positions));
}

int64_t BertForward::hidden_elements(int, const Exemplars& x) const { return x.n * x.length * cfg_.hidden; }

int64_t BertForward::rows_per_exemplar(const Site&, const Exemplars& x) const { return real_tokens_per_sequence(x); }

double BertForward::matmul_flops(const Exemplars& x) const {
  const double n = static_cast<double>(x.n), len = static_cast<double>(x.length), rows = n * len;
  const double d = static_cast<double>(cfg_.hidden), f = static_cast<double>(cfg_.intermediate);
  // query, key, value, attention output; intermediate, output. The embeddings are lookups; the pooler is not run.
  const double linears = 2 * rows * (4 * d * d + 2 * d * f);
  // Every query against every key of its sequence (the mask only zeroes probabilities).
  const double attention = 2 * 2 * n * static_cast<double>(cfg_.heads) * len * len * static_cast<double>(cfg_.head_dim);
  return static_cast<double>(cfg_.layers) * (linears + attention);
}

void BertForward::stage(int s, const WeightSource& w, const Exemplars& x, std::vector<float>& hidden,
                        FeatureSink* sink) const {
  CM_ASSERT(s >= 0 && s < num_stages() && x.kind == InputKind::Tokens);
  if (s == 0) {
    embed(w, x, hidden, sink);
    return;
  }
  if (s <= cfg_.layers) {
    block(s - 1, w, x, hidden, sink);
    return;
  }
  // Pooled: the mean over each sequence's real tokens, summed in double and rounded once.
  const int64_t d = cfg_.hidden;
  CM_ASSERT(hidden.size() == static_cast<size_t>(x.n * x.length * d));
  std::vector<float> pooled(static_cast<size_t>(x.n * d));
  std::vector<double> sum(static_cast<size_t>(d));
  for (int64_t q = 0; q < x.n; ++q) {
    std::fill(sum.begin(), sum.end(), 0.0);
    int64_t count = 0;
    for (int64_t t = 0; t < x.length; ++t) {
      if (!x.mask[static_cast<size_t>(q * x.length + t)]) continue;
      const float* row = hidden.data() + (q * x.length + t) * d;
      for (int64_t j = 0; j < d; ++j) sum[static_cast<size_t>(j)] += row[j];
      ++count;
    }
    CM_ASSERT(count > 0);  // read_exemplars refuses a sequence of nothing but padding
    for (int64_t j = 0; j < d; ++j)
      pooled[static_cast<size_t>(q * d + j)] = static_cast<float>(sum[static_cast<size_t>(j)] / static_cast<double>(count));
  }
  hidden.swap(pooled);
}

void BertForward::norm(const WeightSource& w, const std::string& g, const std::string& b, const std::string& site_name,
                       const std::vector<float>& x, std::vector<float>& y, const Exemplars& ex,
                       FeatureSink* sink) const {
  const int64_t d = cfg_.hidden, rows = static_cast<int64_t>(x.size()) / d;
  const WeightTensor gv = fetch_weight(w, g, d), bv = fetch_weight(w, b, d);
  const bool want = sink && sink->wants(site_name);
  std::vector<float> xhat(want ? x.size() : 0);
  y.resize(x.size());
  be_.layer_norm(x.data(), gv->data(), bv->data(), cfg_.eps, y.data(), want ? xhat.data() : nullptr, rows, d);
  if (want) record_tokens(sink, site_name, SiteKind::NormInput, xhat.data(), d, ex);
}

void BertForward::embed(const WeightSource& w, const Exemplars& x, std::vector<float>& hidden, FeatureSink* sink) const {
  const int64_t d = cfg_.hidden, rows = x.n * x.length;
  const WeightTensor words_t = fetch_weight(w, cfg_.word_emb, cfg_.vocab * d);
  const WeightTensor pos_t = fetch_weight(w, cfg_.pos_emb, cfg_.max_positions * d);
  const WeightTensor types_t = fetch_weight(w, cfg_.type_emb, cfg_.type_vocab * d);
  const std::vector<float>& words = *words_t;
  const std::vector<float>& pos = *pos_t;
  const float* type0 = types_t->data();  // every token is of type 0
  const std::vector<int64_t> position = positions(x);
  std::vector<float> e(static_cast<size_t>(rows * d));
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t id = x.ids[static_cast<size_t>(r)], p = position[static_cast<size_t>(r)];
    CM_ASSERT(id >= 0 && id < cfg_.vocab && p >= 0 && p < cfg_.max_positions);  // check_input ran
    const float* word = words.data() + id * d;
    const float* at = pos.data() + p * d;
    float* out = e.data() + r * d;
    for (int64_t j = 0; j < d; ++j) out[j] = (word[j] + type0[j]) + at[j];  // transformers' order of the sums
  }
  norm(w, cfg_.emb_ln_w, cfg_.emb_ln_b, "embed.ln", e, hidden, x, sink);
}

void BertForward::block(int64_t i, const WeightSource& w, const Exemplars& ex, std::vector<float>& x,
                        FeatureSink* sink) const {
  const BertBlockNames& nm = cfg_.blocks[static_cast<size_t>(i)];
  const int64_t d = cfg_.hidden, rows = ex.n * ex.length, f = cfg_.intermediate;
  CM_ASSERT(x.size() == static_cast<size_t>(rows * d));
  const bool padded = ex.real_tokens() < rows;

  // Attention half: h = LayerNorm-1(attention.output.dense(attn(q, k, v)) + x).
  record_tokens(sink, site(i, "attn_in"), SiteKind::LinearInput, x.data(), d, ex);
  std::vector<float> heads_out(static_cast<size_t>(rows * d)), y(static_cast<size_t>(rows * d));
  {
    std::vector<float> q(static_cast<size_t>(rows * d)), k(static_cast<size_t>(rows * d)), v(static_cast<size_t>(rows * d));
    linear_layer(be_, w, nm.q_w, nm.q_b, x.data(), q.data(), rows, d, d);
    linear_layer(be_, w, nm.k_w, nm.k_b, x.data(), k.data(), rows, d, d);
    linear_layer(be_, w, nm.v_w, nm.v_b, x.data(), v.data(), rows, d, d);
    const AttentionMask mask{false, 0, padded ? ex.mask.data() : nullptr};
    be_.attention(q.data(), k.data(), v.data(), heads_out.data(),
                  AttentionShape{ex.n, ex.length, cfg_.heads, cfg_.heads, cfg_.head_dim}, mask);
  }
  record_tokens(sink, site(i, "attn_out"), SiteKind::LinearInput, heads_out.data(), d, ex);
  linear_layer(be_, w, nm.attn_out_w, nm.attn_out_b, heads_out.data(), y.data(), rows, d, d);
  heads_out = std::vector<float>();
  add_residual(y, x);
  std::vector<float> h;
  norm(w, nm.ln1_w, nm.ln1_b, site(i, "ln1"), y, h, ex, sink);

  // MLP half: x = LayerNorm-2(output.dense(gelu(intermediate.dense(h))) + h).
  record_tokens(sink, site(i, "mlp_in"), SiteKind::LinearInput, h.data(), d, ex);
  std::vector<float> m(static_cast<size_t>(rows * f));
  linear_layer(be_, w, nm.inter_w, nm.inter_b, h.data(), m.data(), rows, f, d);
  be_.activation(Activation::Gelu, m.data(), rows * f);
  record_tokens(sink, site(i, "mlp_act"), SiteKind::LinearInput, m.data(), f, ex);
  linear_layer(be_, w, nm.out_w, nm.out_b, m.data(), y.data(), rows, d, f);
  add_residual(y, h);
  norm(w, nm.ln2_w, nm.ln2_b, site(i, "ln2"), y, x, ex, sink);
}

}  // namespace cm
