#pragma once
// The architecture-neutral forward pass: what the rank pipeline (job/collect_features), eval and the tests
// see of a model. A Forward is a list of stages in layer order (stage 0 = embeddings, 1..L = blocks,
// L + 1 = the final stage, the same numbering as TensorSpec::stage); stage 0 turns the exemplars into the
// hidden state, every later stage transforms it in place, recording its feature sites (docs/DESIGN.md) as
// they are passed, and the last one leaves the pooled output, one row per exemplar. Each stage fetches only
// its own tensors and drops them when it returns, so at most one block's weights are held at a time.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "arch/registry.hpp"
#include "backend/backend.hpp"
#include "features/feature_store.hpp"
#include "io/exemplars.hpp"

namespace cm {

// A tensor as float32 row-major, shared: a source that keeps its tensors (a merged model held in memory,
// a checkpoint read once) lends them to every forward without a copy.
using WeightTensor = std::shared_ptr<const std::vector<float>>;
// A checkpoint tensor by name (the expert as stored, or the scaled feature model).
using WeightSource = std::function<WeightTensor(const std::string& tensor_name)>;
// `kept` lent without ownership: the caller keeps it alive while the forward runs.
WeightTensor lend_weight(const std::vector<float>& kept);
// `values` owned by the tensor.
WeightTensor own_weight(std::vector<float> values);

class Forward {
 public:
  virtual ~Forward() = default;

  // What stage 0 reads: images or token sequences.
  virtual InputKind input() const = 0;
  // Throws cm::Error naming `where` when the exemplars do not fit the model (image size, token ids).
  virtual void check_input(const Exemplars& x, const std::string& where) const = 0;

  virtual int num_stages() const = 0;
  // Floats of the hidden state at the input of stage s (1 <= s < num_stages) for these exemplars: what a
  // rank receives from the rank before it.
  virtual int64_t hidden_elements(int stage, const Exemplars& x) const = 0;
  // Rows one exemplar records at `site` (tokens; CLIP's post-LayerNorm: 1), for the methods' cost models.
  virtual int64_t rows_per_exemplar(const Site& site, const Exemplars& x) const = 0;
  // Width of the pooled output the last stage leaves (eval's heads sit on it).
  virtual int64_t pooled_dim() const = 0;
  // Floating-point operations of the matrix products run() computes on these exemplars, 2 m n k each: every
  // linear map, attention's Q K^T and P V (over all tokens, padding included, as they are computed) and any
  // patch embedding. Element-wise work is left out. For throughput reports (eval's GFLOP/s).
  virtual double matmul_flops(const Exemplars& x) const = 0;

  // Runs stage s on `hidden` (set by stage 0, which ignores what it holds).
  virtual void stage(int s, const WeightSource& w, const Exemplars& x, std::vector<float>& hidden,
                     FeatureSink* sink) const = 0;

  // Every stage in order; returns the pooled output [x.n, pooled_dim()].
  std::vector<float> run(const WeightSource& w, const Exemplars& x, FeatureSink* sink) const;
};

// The forward of the architecture `arch` describes, on `backend` (which must outlive it).
std::unique_ptr<Forward> make_forward(const ArchModel& arch, Backend& backend);

// A tensor from `w` that must hold `numel` values for the model's config; otherwise it would be read out of
// bounds, so the error names the tensor and both sizes.
WeightTensor fetch_weight(const WeightSource& w, const std::string& name, int64_t numel);

// y[rows, out] = x W^T (+ b when `bname` is not "") with the checkpoint's linear layer `wname` [out, in].
void linear_layer(Backend& backend, const WeightSource& w, const std::string& wname, const std::string& bname,
                  const float* x, float* y, int64_t rows, int64_t out, int64_t in);

// x += y, element by element (a residual connection).
void add_residual(std::vector<float>& x, const std::vector<float>& y);

// Throws cm::Error naming `where` when the exemplars are not token sequences (`arch` takes them) or an id is
// past a vocabulary of `vocab` tokens.
void check_token_ids(const Exemplars& x, int64_t vocab, const std::string& arch, const std::string& where);

// Rows a token sequence records at a site on average (real tokens per sequence, rounded up), for the cost
// models: a count is known only from the exemplars.
int64_t real_tokens_per_sequence(const Exemplars& x);

// Records the rows [x.n * x.length, dim] of token exemplars at `site`, those of tokens whose mask is 1
// (METHODS.md: padding tokens are excluded from every feature).
void record_tokens(FeatureSink* sink, const std::string& site, SiteKind kind, const float* rows, int64_t dim,
                   const Exemplars& x);

}  // namespace cm
