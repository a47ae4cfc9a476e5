#include "job/merge_phases.hpp"

#include "common/error.hpp"
#include "job/feature_cache.hpp"

namespace cm {

MergePhases::MergePhases(const JobConfig& cfg, Communicator& comm, bool with_features, bool with_fisher)
    : cfg_(cfg),
      comm_(comm),
      in_(cfg, with_fisher),
      backend_(make_backend(cfg.backend, cfg.threads, cfg.source + ": runtime.backend", cfg.local_rank)) {
  costed_ = in_.model();
  if (with_features) {
    feature_inputs_ = open_feature_inputs(cfg, in_.arch(), *backend_);
    costed_ = with_feature_rows(in_.model(), feature_inputs_);
  }
}

BuiltMethod MergePhases::build(const std::string& name, Params& params, FeatureModel feature_model) {
  MergeContext ctx;
  ctx.model = &costed_;
  ctx.num_tasks = static_cast<int>(cfg_.experts.size());
  ctx.exemplars = cfg_.exemplars;
  ctx.reducer = &comm_;
  ctx.linalg = &backend_->linalg();
  ctx.cat_stats = &cat_stats_;
  ctx.fisher = [this](int k, const MergeUnit& u) {
    std::vector<float> v(static_cast<size_t>(u.numel()));
    in_.read_into(in_.fisher(k), u.name(), u.offset, u.numel(), v.data());
    return v;
  };
  BuiltMethod b;
  b.method = make_method(name, params, ctx);
  b.features = b.method->needs_features();
  if (!b.features) return b;
  if (!feature_inputs_.forward) fail(cfg_.source, "method " + name + " needs features, which this job did not open");
  if (feature_model == FeatureModel::Scaled) {
    b.scales = b.method->task_scales();
    if (b.scales.empty()) fail(cfg_.source, "features.model: 'scaled' has no meaning for method " + name);
  }
  // Built again to point at its feature model's statistics (a method keeps its own copy of the context).
  ctx.features = &features_[b.scales].stores;
  b.method = make_method(name, params, ctx);
  return b;
}

std::vector<double> MergePhases::costs(const Method& method) const {
  std::vector<double> c;
  for (const TensorSpec& t : costed_.tensors) c.push_back(method.cost(t));
  return c;
}

void MergePhases::plan(const std::vector<double>& costs) { plan_ = make_plan(in_.model(), comm_.size(), costs); }

void MergePhases::features(const BuiltMethod& m) {
  if (!m.features) return;
  Collected& c = features_[m.scales];
  if (c.done) return;
  c.stores = cached_features(cfg_, feature_inputs_, in_, *backend_, m.scales, plan_, comm_);
  c.done = true;
}

uint64_t MergePhases::feature_bytes() const {
  uint64_t bytes = 0;
  for (const auto& [scales, c] : features_)
    for (const FeatureStore& f : c.stores) bytes += f.bytes();
  return bytes;
}

void MergePhases::prepare(Method& method) {
  CheckpointUnitStream stream(in_, shard().first_tensor, shard().end_tensor);
  method.prepare(stream);
}

}  // namespace cm
