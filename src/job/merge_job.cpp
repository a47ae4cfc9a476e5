#include "job/merge_job.hpp"

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "backend/backend.hpp"
#include "common/error.hpp"
#include "common/hash.hpp"
#include "io/hdf5_writer.hpp"
#include "job/collect_features.hpp"
#include "job/inputs.hpp"

namespace cm {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

DType output_dtype(const JobConfig& cfg, const TensorSpec& t) {
  if (cfg.output_dtype == "f32") return DType::F32;
  if (cfg.output_dtype == "f16") return DType::F16;
  if (cfg.output_dtype == "bf16") return DType::BF16;
  return t.dtype;
}

// Path, size and SHA-256 of every file the run read, so an output names exactly what it came from.
nlohmann::json describe_inputs(const JobConfig& cfg, const JobInputs& in) {
  nlohmann::json list = nlohmann::json::array();
  auto add = [&](const std::string& role, const std::string& file) {
    list.push_back({{"role", role},
                    {"path", file},
                    {"size", std::filesystem::file_size(file)},
                    {"sha256", sha256_file(file)}});
  };
  for (const auto& f : in.base->files()) add("base", f);
  for (size_t k = 0; k < in.experts.size(); ++k) {
    for (const auto& f : in.experts[k]->files()) add("expert:" + cfg.experts[k].name, f);
    if (k < in.fisher.size())
      for (const auto& f : in.fisher[k]->files()) add("fisher:" + cfg.experts[k].name, f);
  }
  return list;
}

void write_attributes(Hdf5Writer& out, const JobConfig& cfg, const JobInputs& in, const Params& params,
                      bool used_features) {
  out.set_attr("catmerge_version", std::string(CATMERGE_VERSION));
  out.set_attr("arch", cfg.arch);
  out.set_attr("method", cfg.method);
  out.set_attr("hyperparameters", nlohmann::json(params.used()).dump());
  if (used_features)
    out.set_attr("features",
                 nlohmann::json{{"exemplars", cfg.exemplars}, {"model", cfg.feature_model}}.dump());
  out.set_attr("config", cfg.text);
  out.set_attr("config_json", in.base->config_json());
  nlohmann::json inputs = describe_inputs(cfg, in);
  for (size_t k = 0; k < cfg.experts.size(); ++k)
    if (used_features && !cfg.experts[k].exemplars_file.empty())
      inputs.push_back({{"role", "exemplars:" + cfg.experts[k].name},
                        {"path", cfg.experts[k].exemplars_file + ":" + cfg.experts[k].exemplars_group},
                        {"size", std::filesystem::file_size(cfg.experts[k].exemplars_file)},
                        {"sha256", sha256_file(cfg.experts[k].exemplars_file)}});
  out.set_attr("inputs", inputs.dump());
}

}  // namespace

MergeTimings run_merge(const JobConfig& cfg) {
  MergeTimings time;
  const auto start = Clock::now();
  auto phase = start;
  const JobInputs in = open_inputs(cfg, cfg.method == "fisher");
  std::unique_ptr<Backend> backend = make_backend(cfg.backend, cfg.threads, cfg.source + ": runtime.backend");

  std::vector<FeatureStore> features;
  LocalReducer reducer;
  MergeContext ctx;
  ctx.model = &in.model;
  ctx.num_tasks = static_cast<int>(in.experts.size());
  ctx.features = &features;
  ctx.reducer = &reducer;
  ctx.fisher = [&](int k, const MergeUnit& u) { return unit_slice(in.fisher.at(k)->read(u.name()), u); };
  Params params(cfg.method_params, cfg.source + ": method");
  std::unique_ptr<Method> method = make_method(cfg.method, params, ctx);
  time.open = seconds_since(phase);

  phase = Clock::now();
  if (method->needs_features()) {
    std::vector<double> scales;
    if (cfg.feature_model == "scaled") {
      scales = method->task_scales();
      if (scales.empty()) fail(cfg.source, "features.model: 'scaled' has no meaning for method " + cfg.method);
    }
    features = collect_features(cfg, in, *backend, scales);
  }
  time.features = seconds_since(phase);

  phase = Clock::now();
  CheckpointUnitStream stream(in);
  method->prepare(stream);
  time.prepare = seconds_since(phase);

  phase = Clock::now();
  Hdf5Writer out(cfg.output_path);
  std::vector<float> merged;
  stream.for_each([&](const MergeUnit& u, const std::vector<float>& base, const TaskVectors& original) {
    const TensorSpec& t = *u.tensor;
    if (u.part == 0) merged.assign(t.numel(), 0.0f);
    TaskVectors tasks = original;
    const std::vector<float> m = method->merge(u, base, tasks);
    CM_ASSERT(static_cast<int64_t>(m.size()) == u.numel());
    std::copy(m.begin(), m.end(), merged.begin() + u.offset);
    if (u.part == t.parts - 1) out.write_tensor(t.name, output_dtype(cfg, t), t.shape, merged.data());
  });
  write_attributes(out, cfg, in, params, method->needs_features());
  out.commit();
  time.merge_write = seconds_since(phase);
  time.total = seconds_since(start);
  return time;
}

}  // namespace cm
