#pragma once
// The encoder forward of BERT and RoBERTa (transformers' BertModel / RobertaModel with eager attention,
// float32) behind the Forward interface: stage 0 = the embeddings (word + token type 0 + position, then
// LayerNorm), 1..L = encoder layer (0..L-1; post-LN: LayerNorm(x + attention(x)), then LayerNorm(h + MLP(h))
// with the exact-erf GELU), L+1 = the pooled output, the mean of the last hidden state over each sequence's
// real tokens (sentence-transformers' mean pooling, not normalised; the pooler is not run). The hidden state
// is [n * length, hidden] (sequence-major); attention is bidirectional and no query attends to a padding key,
// and no site records a padding token.
#include <cstdint>
#include <string>
#include <vector>

#include "arch/bert.hpp"
#include "backend/backend.hpp"
#include "features/forward.hpp"

namespace cm {

class BertForward : public Forward {
 public:
  BertForward(const BertConfig& cfg, Backend& backend);

  InputKind input() const override { return InputKind::Tokens; }
  void check_input(const Exemplars& x, const std::string& where) const override;
  int num_stages() const override { return static_cast<int>(cfg_.layers) + 2; }
  int64_t hidden_elements(int stage, const Exemplars& x) const override;
  int64_t rows_per_exemplar(const Site& site, const Exemplars& x) const override;
  int64_t pooled_dim() const override { return cfg_.hidden; }
  double matmul_flops(const Exemplars& x) const override;
  void stage(int s, const WeightSource& w, const Exemplars& x, std::vector<float>& hidden,
             FeatureSink* sink) const override;

 private:
  // The position id of every token [n * length], as transformers numbers them without position_ids.
  std::vector<int64_t> positions(const Exemplars& x) const;
  void embed(const WeightSource& w, const Exemplars& x, std::vector<float>& hidden, FeatureSink* sink) const;
  void block(int64_t i, const WeightSource& w, const Exemplars& x, std::vector<float>& hidden, FeatureSink* sink) const;
  // y = LayerNorm(x) with the weight `g` and bias `b`, recording xhat at `site`.
  void norm(const WeightSource& w, const std::string& g, const std::string& b, const std::string& site,
            const std::vector<float>& x, std::vector<float>& y, const Exemplars& ex, FeatureSink* sink) const;

  BertConfig cfg_;
  Backend& be_;
};

}  // namespace cm
