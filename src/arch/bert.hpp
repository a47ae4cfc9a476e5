#pragma once
// The bert architecture: HF BertModel and RobertaModel (names without a prefix) and the bodies of their
// *ForSequenceClassification (names under bert. / roberta., with classifier.* heads). Roles, stages and
// feature sites (docs/DESIGN.md), and what the encoder forward needs to know.
#include <cstdint>
#include <string>
#include <vector>

#include "arch/model_spec.hpp"
#include "io/checkpoint.hpp"

namespace cm {

// How the embeddings number the tokens: BERT 0..L-1 in every sequence; RoBERTa counts only the tokens that
// are not padding (input id != pad_token_id) from pad_token_id + 1 on, and gives padding pad_token_id.
enum class BertPositions { Absolute, PaddingOffset };

// Tensor names of one encoder layer (every one has a bias).
struct BertBlockNames {
  std::string q_w, q_b, k_w, k_b, v_w, v_b;  // attention.self.query / key / value
  std::string attn_out_w, attn_out_b;        // attention.output.dense
  std::string ln1_w, ln1_b;                  // attention.output.LayerNorm
  std::string inter_w, inter_b;              // intermediate.dense
  std::string out_w, out_b;                  // output.dense
  std::string ln2_w, ln2_b;                  // output.LayerNorm
};

struct BertConfig {
  std::string source;       // the checkpoint's path, for errors
  bool has_config = false;  // whether the checkpoint came with a config.json (the forward needs one)
  std::string model_type;   // bert, roberta ("" without a config)
  std::string hidden_act;   // the forward runs "gelu" (exact erf) only
  std::string position_embedding_type;  // the forward runs "absolute" only
  bool is_decoder = false;  // causal BERT (the forward is bidirectional only)
  int64_t hidden = 0, layers = 0, intermediate = 0, vocab = 0, max_positions = 0, type_vocab = 0;
  int64_t heads = 0, head_dim = 0;
  int64_t pad_token_id = 0;
  float eps = 1e-12f;       // layer_norm_eps
  BertPositions positions = BertPositions::Absolute;
  std::string prefix;       // "", "bert." or "roberta."
  std::string word_emb, pos_emb, type_emb, emb_ln_w, emb_ln_b;
  std::vector<BertBlockNames> blocks;
};

// Reads the names from `base` and the settings from its config.json; shapes give the sizes, and the config
// must agree with them. Throws cm::Error naming the checkpoint when it is not a BERT or RoBERTa encoder.
BertConfig bert_config(const Checkpoint& base);

// Why the encoder forward cannot run this model ("" when it can): no config, a model type, activation,
// position embedding or attention it does not implement.
std::string bert_forward_unsupported(const BertConfig& c);

// Roles, stages and sites of every float tensor of `base` (non-float buffers such as the int64
// embeddings.position_ids are no merge unit: a safetensors output copies them as stored).
ModelSpec bert_model(const Checkpoint& base, const BertConfig& c);

}  // namespace cm
