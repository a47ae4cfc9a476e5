// The bert description (arch/bert.cpp) and the jobs on it, from the fixtures of tools/make_random_bert.py:
// names bare and under bert., roles, stages and sites as METHODS.md and docs/DESIGN.md define them, the int64
// position_ids buffer kept out of the merge and copied as stored, the refusals of what the forward does not
// run, the input checks (vocabulary, RoBERTa's offset positions against max_position_embeddings), and
// `catmerge inspect`, `catmerge eval` (labels made from transformers' pooled output) and `catmerge run` on it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "arch/bert.hpp"
#include "arch/registry.hpp"
#include "backend/backend.hpp"
#include "features/forward.hpp"
#include "io/checkpoint.hpp"
#include "test_support.hpp"

namespace cm {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

std::string fixture(const std::string& path) { return (test::fixtures_dir() / path).string(); }

std::map<Role, int> role_counts(const ModelSpec& m) {
  std::map<Role, int> n;
  for (const TensorSpec& t : m.tensors) ++n[t.role];
  return n;
}

TEST(BertArch, BareBertNamesRolesStagesAndSites) {
  const auto ck = open_checkpoint(fixture("bert/base"));
  const ArchModel a = describe_model("bert", *ck);
  const BertConfig& c = std::get<BertConfig>(a.config);
  EXPECT_EQ(c.prefix, "");
  EXPECT_EQ(c.model_type, "bert");
  EXPECT_EQ(c.hidden, 32);
  EXPECT_EQ(c.layers, 2);
  EXPECT_EQ(c.heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.intermediate, 48);
  EXPECT_EQ(c.vocab, 64);
  EXPECT_EQ(c.max_positions, 20);
  EXPECT_EQ(c.type_vocab, 2);
  EXPECT_FLOAT_EQ(c.eps, 1e-12f);
  EXPECT_EQ(c.positions, BertPositions::Absolute);
  const ModelSpec& m = a.model;
  EXPECT_EQ(m.num_stages, 4);
  // Per layer 6 linear maps, 2 LayerNorm weights, 8 biases; the embeddings' three tables, LayerNorm and the
  // pooler's weight and bias.
  EXPECT_EQ(role_counts(m), (std::map<Role, int>{{Role::Linear, 12}, {Role::NormScale, 5}, {Role::Shift, 17},
                                                 {Role::Other, 5}}));
  EXPECT_EQ(m.tensors.size(), ck->tensors().size());  // every float tensor, once
  for (size_t i = 1; i < m.tensors.size(); ++i) EXPECT_LE(m.tensors[i - 1].stage, m.tensors[i].stage) << i;
  const auto expect = [&](const std::string& name, Role role, int stage, const std::string& site) {
    const TensorSpec* t = m.find(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->role, role) << name;
    EXPECT_EQ(t->stage, stage) << name;
    EXPECT_EQ(t->site, site) << name;
  };
  expect("embeddings.word_embeddings.weight", Role::Other, 0, "");
  expect("embeddings.token_type_embeddings.weight", Role::Other, 0, "");
  expect("embeddings.LayerNorm.weight", Role::NormScale, 0, "embed.ln");
  expect("embeddings.LayerNorm.bias", Role::Shift, 0, "");
  for (const char* w : {"query", "key", "value"})
    expect(std::string("encoder.layer.1.attention.self.") + w + ".weight", Role::Linear, 2, "layers.1.attn_in");
  expect("encoder.layer.0.attention.output.dense.weight", Role::Linear, 1, "layers.0.attn_out");
  expect("encoder.layer.0.attention.output.LayerNorm.weight", Role::NormScale, 1, "layers.0.ln1");
  expect("encoder.layer.0.intermediate.dense.weight", Role::Linear, 1, "layers.0.mlp_in");
  expect("encoder.layer.0.intermediate.dense.bias", Role::Shift, 1, "");
  expect("encoder.layer.1.output.dense.weight", Role::Linear, 2, "layers.1.mlp_act");
  expect("encoder.layer.1.output.LayerNorm.weight", Role::NormScale, 2, "layers.1.ln2");
  expect("encoder.layer.1.output.LayerNorm.bias", Role::Shift, 2, "");
  expect("pooler.dense.weight", Role::Other, 3, "");
  expect("pooler.dense.bias", Role::Other, 3, "");
  ASSERT_EQ(m.sites.size(), 13u);
  EXPECT_EQ(m.sites[0].name, "embed.ln");
  EXPECT_EQ(m.site("layers.1.mlp_act")->dim, 48);
  EXPECT_EQ(m.site("layers.1.ln2")->kind, SiteKind::NormInput);
  EXPECT_EQ(m.site("layers.0.attn_out")->kind, SiteKind::LinearInput);
  // The int64 buffer is listed by the checkpoint, never a merge unit.
  EXPECT_EQ(m.find("embeddings.position_ids"), nullptr);
  ASSERT_EQ(ck->other_tensors().size(), 1u);
  EXPECT_EQ(ck->other_tensors()[0].name, "embeddings.position_ids");
  EXPECT_EQ(ck->other_tensors()[0].dtype, "I64");
}

TEST(BertArch, SequenceClassificationNamesAndRoberta) {
  const auto cls = open_checkpoint(fixture("bert_seqcls/model"));
  const ArchModel a = describe_model("bert", *cls);
  EXPECT_EQ(std::get<BertConfig>(a.config).prefix, "bert.");
  EXPECT_EQ(role_counts(a.model)[Role::Other], 7);
  EXPECT_EQ(a.model.find("bert.encoder.layer.0.attention.self.key.weight")->site, "layers.0.attn_in");
  for (const char* name : {"classifier.weight", "classifier.bias", "bert.pooler.dense.bias"}) {
    EXPECT_EQ(a.model.find(name)->role, Role::Other) << name;
    EXPECT_EQ(a.model.find(name)->stage, 3) << name;
  }
  const auto roberta = open_checkpoint(fixture("roberta/base"));
  const BertConfig r = bert_config(*roberta);
  EXPECT_EQ(r.positions, BertPositions::PaddingOffset);
  EXPECT_EQ(r.pad_token_id, 1);
  EXPECT_EQ(r.layers, 3);
  EXPECT_EQ(r.heads, 2);
  EXPECT_EQ(r.type_vocab, 1);
  EXPECT_FLOAT_EQ(r.eps, 1e-5f);
  EXPECT_TRUE(roberta->other_tensors().empty());
  // The other architectures do not take it for theirs (inspect asks each in turn).
  EXPECT_THAT(test::error_of([&] { describe_model("llama", *roberta); }), HasSubstr("not a llama-family model"));
  EXPECT_THAT(test::error_of([&] { describe_model("bert", *open_checkpoint(fixture("qwen2/base"))); }),
              HasSubstr("not a bert model"));
}

// The bert base with its config.json edited.
class BertConfigEdits : public ::testing::Test {
 protected:
  std::unique_ptr<Checkpoint> edited(const json& edits) {
    const std::filesystem::path d = dir_ / ("m" + std::to_string(count_++));
    std::filesystem::create_directories(d);
    std::filesystem::copy_file(fixture("bert/base/model.safetensors"), d / "model.safetensors");
    json cfg = json::parse(test::file_bytes(fixture("bert/base/config.json")));
    for (const auto& [k, v] : edits.items()) {
      if (v.is_null())
        cfg.erase(k);
      else
        cfg[k] = v;
    }
    std::ofstream(d / "config.json") << cfg.dump();
    return open_checkpoint(d.string());
  }
  std::string forward_error(const json& edits) {
    const auto ck = edited(edits);
    const auto backend = make_backend("cpu", 1, "test");
    return test::error_of([&] { make_forward(describe_model("bert", *ck), *backend); });
  }
  test::ScratchDir dir_;
  int count_ = 0;
};

TEST_F(BertConfigEdits, RefusesWhatTheForwardDoesNotRun) {
  EXPECT_THAT(forward_error({{"hidden_act", "gelu_new"}}),
              HasSubstr("hidden_act 'gelu_new' is not supported: the bert forward runs gelu (the exact erf form)"));
  EXPECT_THAT(forward_error({{"hidden_act", "relu"}}), HasSubstr("hidden_act 'relu' is not supported"));
  EXPECT_THAT(forward_error({{"position_embedding_type", "relative_key"}}),
              HasSubstr("position_embedding_type 'relative_key' is not supported"));
  EXPECT_THAT(forward_error({{"is_decoder", true}}), HasSubstr("is_decoder models (causal attention) are not supported"));
  EXPECT_THAT(forward_error({{"model_type", "electra"}}), HasSubstr("model_type 'electra' has no encoder forward"));
  EXPECT_THAT(forward_error({{"num_attention_heads", nullptr}}), HasSubstr("needs the model's config.json"));
  EXPECT_EQ(forward_error({}), "(no error)");
  // Roles need no forward: an unsupported activation still describes.
  EXPECT_EQ(describe_model("bert", *edited({{"hidden_act", "relu"}})).model.tensors.size(), 39u);
  // The config must agree with the shapes.
  for (const char* key : {"hidden_size", "num_hidden_layers", "intermediate_size", "vocab_size",
                          "max_position_embeddings", "type_vocab_size"}) {
    const auto ck = edited({{key, 7}});
    EXPECT_THAT(test::error_of([&] { bert_config(*ck); }), HasSubstr(std::string("config ") + key + " = 7 disagrees"));
  }
  const auto heads = edited({{"num_attention_heads", 5}});
  EXPECT_THAT(test::error_of([&] { bert_config(*heads); }), HasSubstr("not a multiple of num_attention_heads 5"));
}

Exemplars tokens(int64_t length, int64_t id) {
  Exemplars x;
  x.kind = InputKind::Tokens;
  x.n = 1;
  x.length = length;
  x.ids.assign(static_cast<size_t>(length), id);
  x.mask.assign(static_cast<size_t>(length), 1);
  return x;
}

TEST(BertArch, InputsMustFitTheVocabularyAndThePositions) {
  const auto backend = make_backend("cpu", 1, "test");
  const auto bert_ck = open_checkpoint(fixture("bert/base"));
  const auto bert = make_forward(describe_model("bert", *bert_ck), *backend);
  bert->check_input(tokens(20, 63), "x.h5");
  EXPECT_THAT(test::error_of([&] { bert->check_input(tokens(21, 5), "x.h5"); }),
              HasSubstr("x.h5: sequences of 21 tokens need position 20, past max_position_embeddings 20"));
  EXPECT_THAT(test::error_of([&] { bert->check_input(tokens(3, 64), "x.h5"); }),
              HasSubstr("input_ids element 0 is 64, past the vocabulary of 64 tokens"));
  Exemplars images;
  EXPECT_THAT(test::error_of([&] { bert->check_input(images, "x.h5"); }), HasSubstr("bert takes token sequences"));
  // RoBERTa numbers real tokens from pad_token_id + 1 = 2: 22 of them reach position 23 of 24, 23 pass it, and
  // padding (id 1) takes no position of its own.
  const auto roberta_ck = open_checkpoint(fixture("roberta/base"));
  const auto roberta = make_forward(describe_model("bert", *roberta_ck), *backend);
  roberta->check_input(tokens(22, 5), "x.h5");
  EXPECT_THAT(test::error_of([&] { roberta->check_input(tokens(23, 5), "x.h5"); }),
              HasSubstr("need position 24, past max_position_embeddings 24"));
  Exemplars padded = tokens(30, 5);
  std::fill(padded.ids.begin(), padded.ids.begin() + 8, 1);
  std::fill(padded.mask.begin(), padded.mask.begin() + 8, 0);
  roberta->check_input(padded, "x.h5");
}

TEST(BertJobs, InspectNamesTheArchitecture) {
  const test::CliResult r = test::run_catmerge({"inspect", fixture("bert_seqcls/model")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("architecture: bert;"));
  EXPECT_THAT(r.out, HasSubstr("other 7"));
  EXPECT_THAT(r.out, HasSubstr("layers.1.mlp_act"));
}

// catmerge eval on a token model with a mean-pooled head: the labels are argmax(pooled W^T + b) of
// transformers' pooled output through bert/expert1, one moved, so 3 of 4 are right.
TEST(BertJobs, EvalScoresTheMeanPooledOutput) {
  const test::ScratchDir dir;
  const std::string config = (dir / "eval.yaml").string(), prefix = (dir / "scores").string();
  std::ofstream(config) << "model: {arch: bert, base: " << fixture("bert/base") << "}\nexperts: [{name: task1, path: "
                        << fixture("bert/expert1") << "}]\neval: {heads: " << fixture("bert/heads.safetensors")
                        << ", data: " << fixture("bert/eval.h5") << ", batch: 3}\nruntime: {backend: cpu, threads: 1}\n";
  const test::CliResult r = test::run_catmerge({"eval", config, "--model", fixture("bert/expert1"), "--out", prefix});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json scores = json::parse(test::file_bytes(prefix + ".json"));
  ASSERT_EQ(scores["tasks"].size(), 1u);
  EXPECT_EQ(scores["tasks"][0]["images"], 4);
  EXPECT_EQ(scores["tasks"][0]["correct"], 3);
}

// A feature method on bert end to end into a HuggingFace directory: every float tensor merged, the int64
// position_ids copied byte for byte (never read as float); the HDF5 output has none of it, and its export
// with the base copies it as the safetensors output does.
TEST(BertJobs, CatMergesAndCopiesThePositionIdsAsStored) {
  const test::ScratchDir dir;
  for (const std::string format : {"safetensors", "hdf5"}) {
    const std::string out = (dir / (format == "hdf5" ? "merged.h5" : "merged")).string();
    const std::string config = (dir / (format + ".yaml")).string();
    std::ofstream f(config);
    f << "model: {arch: bert, base: " << fixture("bert/base") << "}\nexperts:\n";
    for (int k = 1; k <= 3; ++k)
      f << "  - {name: task" << k << ", path: " << fixture("bert/expert" + std::to_string(k)) << ", exemplars: '"
        << fixture("bert/tokens.h5") << ":/task" << k << "'}\n";
    f << "method: {name: cat}\noutput: {path: " << out << ", format: " << format
      << "}\nruntime: {backend: cpu, threads: 1}\n";
    f.close();
    const test::CliResult r = test::run_catmerge({"run", config});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::string dir_out = out;
    if (format == "hdf5") {
      EXPECT_TRUE(open_checkpoint(out)->other_tensors().empty());
      // catmerge export brings the base's buffer back beside the merged tensors.
      dir_out = (dir / "exported").string();
      const test::CliResult e = test::run_catmerge({"export", out, dir_out, "--base", fixture("bert/base")});
      ASSERT_EQ(e.exit_code, 0) << e.err;
    }
    const auto merged = open_checkpoint(dir_out);
    EXPECT_EQ(merged->tensors().size(), 39u) << format;
    ASSERT_EQ(merged->other_tensors().size(), 1u);
    EXPECT_EQ(merged->other_tensors()[0].dtype, "I64");
    EXPECT_EQ(merged->other_tensors()[0].shape, (std::vector<int64_t>{1, 20}));
    std::vector<int64_t> ids(20), want(20);
    merged->read_stored("embeddings.position_ids", 0, 20 * sizeof(int64_t), ids.data());
    for (int64_t i = 0; i < 20; ++i) want[static_cast<size_t>(i)] = i;  // what make_random_bert.py wrote
    EXPECT_EQ(ids, want);
  }
}

}  // namespace
}  // namespace cm
