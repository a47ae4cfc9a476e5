#pragma once
// The architecture-independent description of a model that the rest of the job works on:
// every tensor with its role (METHODS.md "Roles"), its stage (for sharding and the forward pipeline)
// and the feature site whose recordings the methods use for it.
#include <string>
#include <vector>

#include "common/dtype.hpp"
#include "io/checkpoint.hpp"

namespace cm {

enum class Role { Linear, NormScale, Shift, Other };
const char* role_name(Role r);  // "linear", "norm_scale", "shift", "other"

// Kind of recording at a feature site.
enum class SiteKind {
  LinearInput,  // rows are the inputs x of a linear map y = x W^T + b
  NormInput,    // rows are the normalised input xhat of a LayerNorm / RMSNorm (before the affine part)
};

struct TensorSpec {
  std::string name;             // exactly as in the checkpoint
  Role role = Role::Other;
  DType dtype = DType::F32;     // the base checkpoint's dtype
  std::vector<int64_t> shape;
  int stage = 0;                // 0 = embeddings, 1..L = transformer block L-1, L+1 = final stage
  std::string site;             // feature site (linear and norm_scale tensors); "" otherwise
  int parts = 1;                // > 1 for fused tensors (open_clip in_proj): equal row blocks, each its own unit
  int64_t numel() const;
};

// One merge unit: a whole tensor, or one row block of a fused one. Methods work on units, so a fused
// QKV merges exactly like separate q, k, v tensors (METHODS.md: "handled as three linear maps").
struct MergeUnit {
  const TensorSpec* tensor = nullptr;
  int part = 0;
  int64_t offset = 0;           // flat index in the tensor of the unit's first element
  std::vector<int64_t> shape;   // the unit's own shape (rows of the part, same trailing dims)
  int64_t numel() const;
  Role role() const { return tensor->role; }
  const std::string& name() const { return tensor->name; }
};

std::vector<MergeUnit> units_of(const TensorSpec& t);

// A sample of a unit for estimates (exact selection's brackets, methods/select.hpp): runs of kSampleRun
// consecutive entries (1-D units), one in each stretch of stride * kSampleRun entries at an offset hashed from
// the stretch's position (a fixed offset would sample the same columns of every row), so about one entry in
// `stride`; a run that would pass the unit's end is left out. stride 1 gives the unit itself.
constexpr int64_t kSampleRun = 64;
std::vector<MergeUnit> sample_runs(const MergeUnit& unit, int64_t stride);

struct Site {
  std::string name;
  SiteKind kind = SiteKind::LinearInput;
  int64_t dim = 0;
  int stage = 0;
  int64_t rows_per_exemplar = 0;  // rows one exemplar records here; token models: 0 until the exemplars say
                                  // (job/collect_features.hpp: with_feature_rows)
};

struct ModelSpec {
  std::string arch;
  int num_stages = 0;
  std::vector<TensorSpec> tensors;  // in stage order
  std::vector<Site> sites;
  const TensorSpec* find(const std::string& name) const;
  const Site* site(const std::string& name) const;
  // Appends `base`'s float tensor `name` (one unit) with its dtype and shape; throws cm::Error naming the
  // checkpoint when it has none of that name.
  void add(const Checkpoint& base, const std::string& name, Role role, int stage, const std::string& site_name);
  // Appends every float tensor of `base` under `prefix` that is not described yet (anything newer than the
  // description), at `stage`, so nothing the user gave is silently dropped: with `bias_is_shift` a name ending
  // in .bias is a shift and anything else 'other'; without, all are 'other'.
  void add_undescribed(const Checkpoint& base, const std::string& prefix, int stage, bool bias_is_shift);
};

}  // namespace cm
