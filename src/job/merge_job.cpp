#include "job/merge_job.hpp"

#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "backend/backend.hpp"
#include "common/error.hpp"
#include "common/hash.hpp"
#include "io/hdf5_writer.hpp"
#include "job/collect_features.hpp"
#include "job/inputs.hpp"
#include "plan/shard_plan.hpp"

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
nlohmann::json describe_inputs(const JobConfig& cfg, const JobInputs& in, bool used_features) {
  nlohmann::json list = nlohmann::json::array();
  auto add = [&](const std::string& role, const std::string& file, const std::string& shown) {
    list.push_back({{"role", role},
                    {"path", shown},
                    {"size", std::filesystem::file_size(file)},
                    {"sha256", sha256_file(file)}});
  };
  for (const auto& f : in.base().files()) add("base", f, f);
  for (size_t k = 0; k < in.num_experts(); ++k) {
    const ExpertConfig& e = cfg.experts[k];
    for (const auto& f : in.expert(k).files()) add("expert:" + e.name, f, f);
    if (in.has_fisher())
      for (const auto& f : in.fisher(k).files()) add("fisher:" + e.name, f, f);
    if (used_features && !e.exemplars_file.empty())
      add("exemplars:" + e.name, e.exemplars_file, e.exemplars_file + ":" + e.exemplars_group);
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
    out.set_attr("features", nlohmann::json{{"exemplars", cfg.exemplars}, {"model", cfg.feature_model}}.dump());
  out.set_attr("config", cfg.text);
  out.set_attr("config_json", in.base().config_json());
  out.set_attr("inputs", describe_inputs(cfg, in, used_features).dump());
}

// The merged values of one tensor of this rank's shard.
std::vector<float> merge_tensor(const JobInputs& in, const TensorSpec& t, Method& method) {
  std::vector<float> merged(static_cast<size_t>(t.numel()));
  visit_units(in, t, [&](const MergeUnit& u, const std::vector<float>& base, const TaskVectors& original) {
    TaskVectors tasks = original;
    const std::vector<float> m = method.merge(u, base, tasks);
    CM_ASSERT(static_cast<int64_t>(m.size()) == u.numel());
    std::copy(m.begin(), m.end(), merged.begin() + u.offset);
  });
  return merged;
}

// Rank 0 writes its own tensors as it merges them; every other rank merges its whole shard first (holding
// it as float32), so no rank waits on another's merge. Then round j gathers each rank's j-th tensor on rank
// 0, which writes them: rank 0 holds at most one tensor per rank at a time, and a rank frees each tensor
// once it is sent.
void merge_and_gather(const JobInputs& in, const ShardPlan& plan, Method& method, Communicator& comm,
                      Hdf5Writer* out) {
  const RankShard& mine = plan.ranks[comm.rank()];
  std::vector<std::vector<float>> held;
  for (int t = mine.first_tensor; t < mine.end_tensor; ++t) {
    std::vector<float> merged = merge_tensor(in, in.model().tensors[t], method);
    if (out)
      out->write_tensor(in.model().tensors[t].name, merged.data());
    else
      held.push_back(std::move(merged));
  }
  int rounds = 0;
  for (size_t r = 1; r < plan.ranks.size(); ++r)
    rounds = std::max(rounds, plan.ranks[r].end_tensor - plan.ranks[r].first_tensor);
  std::vector<float> gathered;
  std::vector<size_t> counts;
  for (int j = 0; j < rounds; ++j) {
    std::vector<float> mine_j;
    if (j < static_cast<int>(held.size())) mine_j.swap(held[j]);
    comm.gather(mine_j.data(), mine_j.size(), 0, &gathered, &counts);
    if (!out) continue;
    size_t at = 0;
    for (size_t r = 1; r < counts.size(); ++r) {
      const int t = plan.ranks[r].first_tensor + j;
      if (t >= plan.ranks[r].end_tensor) continue;
      CM_ASSERT(counts[r] == static_cast<size_t>(in.model().tensors[t].numel()));
      out->write_tensor(in.model().tensors[t].name, gathered.data() + at);
      at += counts[r];
    }
  }
}

}  // namespace

MergeReport run_merge(const JobConfig& cfg, Communicator& comm) {
  MergeReport report;
  const auto start = Clock::now();
  auto phase = start;
  const JobInputs in(cfg, cfg.method == "fisher");
  const ShardPlan plan = make_plan(in.model(), comm.size());
  const RankShard& mine = plan.ranks[comm.rank()];
  std::unique_ptr<Backend> backend =
      make_backend(cfg.backend, cfg.threads, cfg.source + ": runtime.backend", cfg.local_rank);

  std::vector<FeatureStore> features;
  MergeContext ctx;
  ctx.model = &in.model();
  ctx.num_tasks = static_cast<int>(in.num_experts());
  ctx.features = &features;
  ctx.reducer = &comm;
  ctx.linalg = &backend->linalg();
  ctx.cat_stats = &report.cat;
  ctx.fisher = [&](int k, const MergeUnit& u) { return unit_slice(in.read(in.fisher(k), u.name()), u); };
  Params params(cfg.method_params, cfg.source + ": method");
  std::unique_ptr<Method> method = make_method(cfg.method, params, ctx);
  // Rank 0 creates every dataset up front in model order: the file is the same for any number of ranks.
  std::unique_ptr<Hdf5Writer> out;
  if (comm.rank() == 0) {
    const std::filesystem::path folder = std::filesystem::path(cfg.output_path).parent_path();
    std::error_code ec;
    if (!folder.empty()) std::filesystem::create_directories(folder, ec);
    out = std::make_unique<Hdf5Writer>(cfg.output_path);
    for (const TensorSpec& t : in.model().tensors) out->declare_tensor(t.name, output_dtype(cfg, t), t.shape);
  }
  report.open = seconds_since(phase);

  phase = Clock::now();
  if (method->needs_features()) {
    std::vector<double> scales;
    if (cfg.feature_model == "scaled") {
      scales = method->task_scales();
      if (scales.empty()) fail(cfg.source, "features.model: 'scaled' has no meaning for method " + cfg.method);
    }
    features = collect_features(cfg, in, *backend, scales, plan, comm);
  }
  report.features = seconds_since(phase);

  phase = Clock::now();
  CheckpointUnitStream stream(in, mine.first_tensor, mine.end_tensor);
  method->prepare(stream);
  report.prepare = seconds_since(phase);

  phase = Clock::now();
  merge_and_gather(in, plan, *method, comm, out.get());
  if (out) {
    write_attributes(*out, cfg, in, params, method->needs_features());
    out->commit();
  }
  // No rank reports success before rank 0 has committed the output.
  comm.barrier();
  report.merge_write = seconds_since(phase);
  report.total = seconds_since(start);

  report.bytes_read.assign(comm.size(), 0);
  report.bytes_read[comm.rank()] = in.bytes_read();
  comm.sum(report.bytes_read.data(), report.bytes_read.size());
  for (const RankShard& s : plan.ranks) report.shard_bytes.push_back(s.bytes);
  return report;
}

}  // namespace cm
