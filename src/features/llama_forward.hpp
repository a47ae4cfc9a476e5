#pragma once
// The decoder forward of the llama family (transformers' LlamaModel, MistralModel, Qwen2Model with eager
// attention, float32) behind the Forward interface: stage 0 = token embedding, 1..L = decoder block
// (0..L-1), L+1 = the final RMSNorm, whose pooled output is the normalised hidden state of each sequence's
// last real token. The hidden state is [n * length, hidden] (sequence-major); padding tokens flow through
// it but no query attends to them and no site records them. Positions are 0..length-1 in every sequence,
// as transformers numbers them when it is given no position_ids. lm_head is not run: nothing reads it.
#include <cstdint>
#include <string>
#include <vector>

#include "arch/llama.hpp"
#include "backend/backend.hpp"
#include "features/forward.hpp"

namespace cm {

class LlamaForward : public Forward {
 public:
  LlamaForward(const LlamaConfig& cfg, Backend& backend);

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
  void embed(const WeightSource& w, const Exemplars& x, std::vector<float>& hidden) const;
  void block(int64_t i, const WeightSource& w, const Exemplars& x, std::vector<float>& hidden, FeatureSink* sink) const;
  void final(const WeightSource& w, const Exemplars& x, std::vector<float>& hidden, FeatureSink* sink) const;
  // y = RMSNorm(x) with the weight `g`, recording xhat at `site`.
  void norm(const WeightSource& w, const std::string& g, const std::string& site, const std::vector<float>& x,
            std::vector<float>& y, const Exemplars& ex, FeatureSink* sink) const;

  LlamaConfig cfg_;
  std::vector<float> inv_freq_;  // rope_inv_freq of the config
  Backend& be_;
};

}  // namespace cm
