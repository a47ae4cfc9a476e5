#include "features/forward.hpp"

#include "common/error.hpp"
#include "features/bert_forward.hpp"
#include "features/clip_forward.hpp"
#include "features/llama_forward.hpp"

namespace cm {

std::vector<float> Forward::run(const WeightSource& w, const Exemplars& x, FeatureSink* sink) const {
  std::vector<float> hidden;
  for (int s = 0; s < num_stages(); ++s) stage(s, w, x, hidden, sink);
  return hidden;
}

std::unique_ptr<Forward> make_forward(const ArchModel& arch, Backend& backend) {
  if (const auto* clip = std::get_if<ClipVisionConfig>(&arch.config)) return std::make_unique<ClipForward>(*clip, backend);
  if (const auto* bert = std::get_if<BertConfig>(&arch.config)) {
    const std::string why = bert_forward_unsupported(*bert);
    if (!why.empty()) fail(bert->source, why);
    return std::make_unique<BertForward>(*bert, backend);
  }
  const LlamaConfig& llama = std::get<LlamaConfig>(arch.config);
  const std::string why = llama_forward_unsupported(llama);
  if (!why.empty()) fail(llama.source, why);
  return std::make_unique<LlamaForward>(llama, backend);
}

WeightTensor lend_weight(const std::vector<float>& kept) {
  return WeightTensor(std::shared_ptr<void>(), &kept);  // the aliasing constructor with no owner
}

WeightTensor own_weight(std::vector<float> values) {
  return std::make_shared<const std::vector<float>>(std::move(values));
}

WeightTensor fetch_weight(const WeightSource& w, const std::string& name, int64_t numel) {
  WeightTensor t = w(name);
  CM_ASSERT(t != nullptr);
  if (static_cast<int64_t>(t->size()) != numel)
    fail(name, "has " + std::to_string(t->size()) + " elements, the model's config needs " + std::to_string(numel));
  return t;
}

void linear_layer(Backend& backend, const WeightSource& w, const std::string& wname, const std::string& bname,
                  const float* x, float* y, int64_t rows, int64_t out, int64_t in) {
  const WeightTensor wv = fetch_weight(w, wname, out * in);
  const WeightTensor bv = bname.empty() ? nullptr : fetch_weight(w, bname, out);
  backend.linear(x, wv->data(), bv ? bv->data() : nullptr, y, rows, out, in);
}

void add_residual(std::vector<float>& x, const std::vector<float>& y) {
  CM_ASSERT(x.size() == y.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];
}

void check_token_ids(const Exemplars& x, int64_t vocab, const std::string& arch, const std::string& where) {
  if (x.kind != InputKind::Tokens) fail(where, arch + " takes token sequences (input_ids), these exemplars are images");
  for (size_t i = 0; i < x.ids.size(); ++i)
    if (x.ids[i] >= vocab)
      fail(where, "input_ids element " + std::to_string(i) + " is " + std::to_string(x.ids[i]) + ", past the vocabulary of " +
                      std::to_string(vocab) + " tokens");
}

int64_t real_tokens_per_sequence(const Exemplars& x) { return x.n > 0 ? (x.real_tokens() + x.n - 1) / x.n : 0; }

void record_tokens(FeatureSink* sink, const std::string& site, SiteKind kind, const float* rows, int64_t dim,
                   const Exemplars& x) {
  if (!sink || !sink->wants(site)) return;
  const int64_t all = x.n * x.length, real = x.real_tokens();
  if (real == all) return sink->record(site, kind, rows, all, dim);
  std::vector<float> kept(static_cast<size_t>(real * dim));
  int64_t r = 0;
  for (int64_t t = 0; t < all; ++t)
    if (x.mask[static_cast<size_t>(t)]) std::copy(rows + t * dim, rows + (t + 1) * dim, kept.data() + (r++) * dim);
  sink->record(site, kind, kept.data(), real, dim);
}

}  // namespace cm
