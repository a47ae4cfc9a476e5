#include "job/merge_job.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "backend/backend.hpp"
#include "common/error.hpp"
#include "common/parallel.hpp"
#include "io/hdf5_writer.hpp"
#include "job/collect_features.hpp"
#include "job/gather.hpp"
#include "job/hf_output.hpp"
#include "job/inputs.hpp"
#include "job/progress.hpp"
#include "job/provenance.hpp"
#include "plan/shard_plan.hpp"

namespace cm {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

DType output_dtype(const JobConfig& cfg, const TensorSpec& t) { return cfg.output_dtype.value_or(t.dtype); }

std::unique_ptr<Method> build_method(const JobConfig& cfg, Params& params, MergeContext& ctx, const ModelSpec& model) {
  ctx.model = &model;
  ctx.num_tasks = static_cast<int>(cfg.experts.size());
  ctx.exemplars = cfg.exemplars;
  return make_method(cfg.method, params, ctx);
}

std::vector<double> tensor_costs(const Method& method, const ModelSpec& model) {
  std::vector<double> costs;
  for (const TensorSpec& t : model.tensors) costs.push_back(method.cost(t));
  return costs;
}

void write_attributes(Hdf5Writer& out, const JobConfig& cfg, const JobInputs& in, const Params& params,
                      bool used_features, const nlohmann::json& inputs) {
  out.set_attr("catmerge_version", std::string(CATMERGE_VERSION));
  out.set_attr("arch", cfg.arch);
  out.set_attr("method", cfg.method);
  out.set_attr("hyperparameters", params.used().dump());
  if (used_features)
    out.set_attr("features", nlohmann::json{{"exemplars", cfg.exemplars},
                                            {"model", feature_model_name(cfg.feature_model)}}
                                 .dump());
  out.set_attr("config", cfg.text);
  out.set_attr("config_json", in.base().config_json());
  out.set_attr("inputs", inputs.dump());
}

// The run's output: rank 0's HDF5 file, with every dataset created up front in model order (so the file is the
// same for any number of ranks), or the safetensors directory whose shards each rank creates for its own tensors.
struct RunOutput {
  std::unique_ptr<Hdf5Writer> h5;
  std::unique_ptr<HfOutput> hf;
  TensorSink* sink() const { return hf ? &hf->sink() : static_cast<TensorSink*>(h5.get()); }
};

RunOutput open_output(const JobConfig& cfg, const JobInputs& in, const ShardPlan& plan, const Params& params,
                      Communicator& comm) {
  RunOutput out;
  if (cfg.output_format == OutputFormat::Safetensors) {
    std::vector<TensorInfo> merged;
    std::vector<int> part;
    for (size_t r = 0; r < plan.ranks.size(); ++r)
      for (int i = plan.ranks[r].first_tensor; i < plan.ranks[r].end_tensor; ++i) {
        const TensorSpec& t = in.model().tensors[i];
        merged.push_back({t.name, output_dtype(cfg, t), t.shape});
        part.push_back(static_cast<int>(r));
      }
    out.hf = std::make_unique<HfOutput>(
        cfg.output_path, output_tensors(merged, part, &in.base(), cfg.output_dtype), cfg.shard_size,
        output_metadata(CATMERGE_VERSION, cfg.arch, cfg.method, params.used().dump()), comm);
  } else if (comm.rank() == 0) {
    const std::filesystem::path folder = std::filesystem::path(cfg.output_path).parent_path();
    std::error_code ec;
    if (!folder.empty()) std::filesystem::create_directories(folder, ec);
    out.h5 = std::make_unique<Hdf5Writer>(cfg.output_path);
    for (const TensorSpec& t : in.model().tensors) out.h5->declare_tensor(t.name, output_dtype(cfg, t), t.shape);
  }
  return out;
}

// The working memory of the merge loop, kept from tensor to tensor so that its buffers are reused.
struct MergeBuffers {
  std::vector<UnitValues> values;                  // per worker
  std::vector<std::vector<float>> merged;          // per worker: a unit's or a block's merged values
  std::vector<std::vector<unsigned char>> stored;  // per worker: the same in the output dtype
};

// Converts `merged` to the output dtype and hands it to the tensor at element `first`.
void store(TensorGather::Tensor& dest, DType dtype, int64_t first, const std::vector<float>& merged,
           std::vector<unsigned char>& stored) {
  const size_t esize = dtype_size(dtype);
  stored.resize(merged.size() * esize);
  from_f32(dtype, merged.data(), stored.data(), merged.size());
  dest.store(static_cast<uint64_t>(first) * esize, stored.data(), stored.size());
}

// One tensor, merged and stored into `dest`. Element-wise methods take the tensor in blocks spread over every
// CPU thread (with each unit's statistics first, for methods that need them); the others take it unit by unit
// (and use the threads themselves).
void merge_tensor(const JobInputs& in, const TensorSpec& t, Method& method, DType dtype, MergeBuffers& buf,
                  TensorGather::Tensor& dest, TensorGather& gather) {
  const std::vector<MergeUnit> units = units_of(t);
  if (!method.elementwise(t)) {
    buf.values.resize(1);
    buf.merged.resize(1);
    buf.stored.resize(1);
    for (const MergeUnit& u : units) {
      in.read_values(t, u.offset, u.numel(), buf.values[0], cpu_threads());
      buf.merged[0].resize(static_cast<size_t>(u.numel()));
      method.merge(u, buf.values[0].base, buf.values[0].tasks, buf.merged[0].data());
      store(dest, dtype, u.offset, buf.merged[0], buf.stored[0]);
      gather.poll();
    }
    return;
  }
  const int workers = cpu_threads();
  buf.values.resize(static_cast<size_t>(workers));
  buf.merged.resize(static_cast<size_t>(workers));
  buf.stored.resize(static_cast<size_t>(workers));
  // All the tensor's blocks at once, or unit by unit when each unit's statistics come first.
  std::vector<std::vector<MergeUnit>> rounds;
  for (const MergeUnit& u : units) {
    if (rounds.empty() || method.unit_statistics()) rounds.emplace_back();
    for (const MergeUnit& b : unit_blocks(u, in.num_experts())) rounds.back().push_back(b);
  }
  for (size_t r = 0; r < rounds.size(); ++r) {
    if (method.unit_statistics()) {
      CheckpointUnitStream unit(in, units[r]);
      method.prepare_unit(unit);
    }
    const std::vector<MergeUnit>& blocks = rounds[r];
    parallel_for(static_cast<int64_t>(blocks.size()), workers, [&](int64_t b, int w) {
      const MergeUnit& part = blocks[static_cast<size_t>(b)];
      UnitValues& v = buf.values[static_cast<size_t>(w)];
      std::vector<float>& m = buf.merged[static_cast<size_t>(w)];
      in.read_values(t, part.offset, part.numel(), v);
      m.resize(static_cast<size_t>(part.numel()));
      method.merge(part, v.base, v.tasks, m.data());
      store(dest, dtype, part.offset, m, buf.stored[static_cast<size_t>(w)]);
    });
    gather.poll();
  }
}

uint64_t peak_rss_bytes() {
  struct rusage u {};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<uint64_t>(u.ru_maxrss) * 1024;  // Linux reports kilobytes
}

}  // namespace

ShardPlan plan_run(const JobConfig& cfg, int ranks, const ArchModel& arch) {
  Params params(cfg.method_params, cfg.source + ": method");
  MergeContext ctx;
  std::unique_ptr<Method> method = build_method(cfg, params, ctx, arch.model);
  // With exemplars, a method with features is costed with the rows they record, as `run` does.
  ModelSpec costed;
  const bool exemplars = std::all_of(cfg.experts.begin(), cfg.experts.end(),
                                     [](const ExpertConfig& e) { return !e.exemplars_file.empty(); });
  if (method->needs_features() && exemplars) {
    const std::unique_ptr<Backend> cpu = make_backend("cpu", 1, cfg.source + ": runtime.backend");
    costed = with_feature_rows(arch.model, open_feature_inputs(cfg, arch, *cpu));
    method = build_method(cfg, params, ctx, costed);
  }
  return make_plan(arch.model, ranks, tensor_costs(*method, *ctx.model));
}

MergeReport run_merge(const JobConfig& cfg, Communicator& comm) {
  MergeReport report;
  const auto start = Clock::now();
  auto phase = start;
  const bool rank0 = comm.rank() == 0;
  const JobInputs in(cfg, cfg.method == "fisher");
  std::unique_ptr<Backend> backend =
      make_backend(cfg.backend, cfg.threads, cfg.source + ": runtime.backend", cfg.local_rank);

  std::vector<FeatureStore> features;
  MergeContext ctx;
  ctx.features = &features;
  ctx.reducer = &comm;
  ctx.linalg = &backend->linalg();
  ctx.cat_stats = &report.cat;
  ctx.fisher = [&](int k, const MergeUnit& u) {
    std::vector<float> v(static_cast<size_t>(u.numel()));
    in.read_into(in.fisher(k), u.name(), u.offset, u.numel(), v.data());
    return v;
  };
  Params params(cfg.method_params, cfg.source + ": method");
  std::unique_ptr<Method> method = build_method(cfg, params, ctx, in.model());
  // A method with features needs the exemplars before the plan: its costs count the rows they record, so it
  // is built again on the model that says how many (methods keep their own copy of the context).
  FeatureInputs feature_inputs;
  ModelSpec costed;
  if (method->needs_features()) {
    feature_inputs = open_feature_inputs(cfg, in.arch(), *backend);
    costed = with_feature_rows(in.model(), feature_inputs);
    method = build_method(cfg, params, ctx, costed);
  }
  const ShardPlan plan = make_plan(in.model(), comm.size(), tensor_costs(*method, *ctx.model));
  const RankShard& mine = plan.ranks[comm.rank()];
  const bool local = cfg.output_format == OutputFormat::Safetensors;
  RunOutput out = open_output(cfg, in, plan, params, comm);
  report.open = seconds_since(phase);

  phase = Clock::now();
  if (method->needs_features()) {
    std::vector<double> scales;
    if (cfg.feature_model == FeatureModel::Scaled) {
      scales = method->task_scales();
      if (scales.empty()) fail(cfg.source, "features.model: 'scaled' has no meaning for method " + cfg.method);
    }
    features = collect_features(feature_inputs, in, *backend, scales, plan, comm);
    for (const FeatureStore& f : features) report.feature_bytes += f.bytes();
  }
  report.features = seconds_since(phase);

  phase = Clock::now();
  {
    CheckpointUnitStream stream(in, mine.first_tensor, mine.end_tensor);
    method->prepare(stream);
  }
  report.prepare = seconds_since(phase);

  phase = Clock::now();
  double shard_seconds = 0, output_io = 0;
  {
    // Rank 0 sees every tensor written when they all come to it; else only its own share.
    uint64_t units = 0;
    std::vector<uint64_t> stored;
    for (size_t i = 0; i < in.model().tensors.size(); ++i) {
      const TensorSpec& t = in.model().tensors[i];
      if (!local || (static_cast<int>(i) >= mine.first_tensor && static_cast<int>(i) < mine.end_tensor))
        units += static_cast<uint64_t>(t.parts);
      stored.push_back(static_cast<uint64_t>(t.numel()) * dtype_size(output_dtype(cfg, t)));
    }
    Progress progress("merge", local && comm.size() > 1 ? "units of rank 0" : "units", units, rank0);
    TensorGather gather(plan, in.model(), stored, comm, local ? TensorGather::Route::Local : TensorGather::Route::ToRoot,
                        out.sink(), [&](int t) { progress.advance(static_cast<uint64_t>(in.model().tensors[t].parts)); });
    MergeBuffers buf;
    for (int i = mine.first_tensor; i < mine.end_tensor; ++i) {
      const TensorSpec& t = in.model().tensors[i];
      if (i + 1 < mine.end_tensor) in.will_need(in.model().tensors[i + 1]);
      TensorGather::Tensor dest = gather.begin(i);
      merge_tensor(in, t, *method, output_dtype(cfg, t), buf, dest, gather);
      in.release(t);
      gather.end(std::move(dest));
    }
    shard_seconds = seconds_since(start);
    gather.finish();
    output_io = gather.write_seconds();
  }
  report.merge = seconds_since(phase);

  phase = Clock::now();
  if (out.hf) out.hf->copy_tensors(in.base(), out.hf->tensors().merged, out.hf->tensors().stored.size());
  const nlohmann::json inputs = describe_inputs(cfg, in, plan, comm, method->needs_features());
  if (out.h5) {
    write_attributes(*out.h5, cfg, in, params, method->needs_features(), inputs);
    out.h5->commit();
  }
  if (out.hf)
    out.hf->commit(base_files(cfg.base, &in.base(), ""),
                   {{"config", cfg.text}, {"inputs", rank0 ? inputs.dump() : ""}});
  if (rank0)
    for (const nlohmann::json& f : inputs)
      if (f["role"].get<std::string>().rfind("exemplars:", 0) != 0) report.input_bytes += f["size"].get<uint64_t>();
  // No rank reports success before rank 0 has committed the output.
  comm.barrier();
  report.write = seconds_since(phase);
  report.total = seconds_since(start);

  const size_t R = static_cast<size_t>(comm.size()), r = static_cast<size_t>(comm.rank());
  report.bytes_read.assign(R, 0);
  report.bytes_read[r] = in.bytes_read();
  report.peak_rss.assign(R, 0);
  report.peak_rss[r] = peak_rss_bytes();
  comm.sum(report.bytes_read.data(), R);
  comm.sum(report.peak_rss.data(), R);
  report.shard_seconds.assign(R, 0);
  report.shard_seconds[r] = shard_seconds;
  comm.sum(report.shard_seconds.data(), R);
  report.output_io.assign(R, 0);
  report.output_io[r] = output_io;
  comm.sum(report.output_io.data(), R);
  for (const RankShard& s : plan.ranks) {
    report.shard_bytes.push_back(s.bytes);
    report.shard_cost.push_back(s.cost);
  }
  return report;
}

}  // namespace cm
