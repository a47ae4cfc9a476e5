#include "job/merge_job.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>

#include "backend/backend.hpp"
#include "common/error.hpp"
#include "job/gather.hpp"
#include "job/merge_loop.hpp"
#include "job/merge_phases.hpp"
#include "job/progress.hpp"
#include "job/provenance.hpp"
#include "job/resume.hpp"
#include "job/run_output.hpp"
#include "plan/shard_plan.hpp"

namespace cm {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

uint64_t peak_rss_bytes() {
  struct rusage u {};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<uint64_t>(u.ru_maxrss) * 1024;  // Linux reports kilobytes
}

// Every one of this rank's tensors into the output: taken whole from the resume directory when an earlier run
// saved it, else merged block by block (job/merge_loop) and saved there as it completes.
void merge_shard(MergePhases& phases, Method& method, RunOutput& out, ResumeStore& resume, Progress& progress,
                 TensorGather::Route route, double* shard_seconds, double* output_io, Clock::time_point start) {
  const JobInputs& in = phases.inputs();
  const RankShard& mine = phases.shard();
  TensorGather gather(phases.shard_plan(), in.model(), out.stored_bytes(), phases.comm(), route, out.sink(),
                      [&](int t) { progress.advance(static_cast<uint64_t>(in.model().tensors[t].parts)); });
  MergeLoop loop(in, method, MergeValues::Merged);
  std::vector<std::vector<unsigned char>> scratch(static_cast<size_t>(loop.workers()));
  std::vector<unsigned char> whole;  // the tensor's stored bytes, as the resume directory keeps them
  for (int i = mine.first_tensor; i < mine.end_tensor; ++i) {
    const TensorSpec& t = in.model().tensors[i];
    const uint64_t bytes = out.stored_bytes()[i];
    TensorGather::Tensor dest = gather.begin(i);
    if (resume.load(i, bytes, whole)) {
      dest.store(0, whole.data(), whole.size());
    } else {
      if (i + 1 < mine.end_tensor) in.will_need(in.model().tensors[i + 1]);
      const DType dtype = out.dtype_of(t);
      const size_t esize = dtype_size(dtype);
      whole.resize(static_cast<size_t>(bytes));
      loop.tensor(
          t,
          [&](const MergedBlock& b) {
            std::vector<unsigned char>& s = scratch[static_cast<size_t>(b.worker)];
            store_values(dest, dtype, b.first, b.values, b.n, s);
            std::copy(s.begin(), s.end(), whole.begin() + static_cast<std::ptrdiff_t>(b.first * esize));
          },
          [&] { gather.poll(); });
      in.release(t);
      resume.save(i, whole.data(), whole.size());
    }
    gather.end(std::move(dest));
  }
  *shard_seconds = seconds_since(start);
  gather.finish();
  *output_io = gather.write_seconds();
}

}  // namespace

ShardPlan plan_run(const JobConfig& cfg, int ranks, const ArchModel& arch) {
  Params params(cfg.method_params, cfg.source + ": method");
  MergeContext ctx;
  ctx.model = &arch.model;
  ctx.num_tasks = static_cast<int>(cfg.experts.size());
  ctx.exemplars = cfg.exemplars;
  std::unique_ptr<Method> method = make_method(cfg.method, params, ctx);
  // With exemplars, a method with features is costed with the rows they record, as `run` does.
  ModelSpec costed;
  const bool exemplars = std::all_of(cfg.experts.begin(), cfg.experts.end(),
                                     [](const ExpertConfig& e) { return !e.exemplars_file.empty(); });
  if (method->needs_features() && exemplars) {
    const std::unique_ptr<Backend> cpu = make_backend("cpu", 1, cfg.source + ": runtime.backend");
    costed = with_feature_rows(arch.model, open_feature_inputs(cfg, arch, *cpu));
    ctx.model = &costed;
    method = make_method(cfg.method, params, ctx);
  }
  std::vector<double> costs;
  for (const TensorSpec& t : ctx.model->tensors) costs.push_back(method->cost(t));
  return make_plan(arch.model, ranks, costs);
}

MergeReport run_merge(const JobConfig& cfg, Communicator& comm) {
  MergeReport report;
  const auto start = Clock::now();
  auto phase = start;
  const bool rank0 = comm.rank() == 0;

  // Open: inputs, the method (on the model that counts the exemplars' rows, for its costs), the plan, the output.
  const bool needs_features = [&] {
    Params probe(cfg.method_params, cfg.source + ": method");
    MergeContext ctx;
    ctx.num_tasks = static_cast<int>(cfg.experts.size());
    return make_method(cfg.method, probe, ctx)->needs_features();
  }();
  MergePhases phases(cfg, comm, needs_features, cfg.method == "fisher");
  const JobInputs& in = phases.inputs();
  Params params(cfg.method_params, cfg.source + ": method");
  const BuiltMethod built = phases.build(cfg.method, params, cfg.feature_model);
  phases.plan(phases.costs(*built.method));
  const bool local = cfg.output_format == OutputFormat::Safetensors;
  RunOutput out(cfg, in, phases.shard_plan(), params.used(), comm);
  report.open = seconds_since(phase);

  phase = Clock::now();
  phases.features(built);
  report.feature_bytes = phases.feature_bytes();
  report.features = seconds_since(phase);

  phase = Clock::now();
  phases.prepare(*built.method);
  report.prepare = seconds_since(phase);

  phase = Clock::now();
  double shard_seconds = 0, output_io = 0;
  ResumeStore resume(cfg, comm);
  {
    // Rank 0 sees every tensor written when they all come to it; else only its own share.
    const RankShard& mine = phases.shard();
    uint64_t units = 0;
    for (size_t i = 0; i < in.model().tensors.size(); ++i)
      if (!local || (static_cast<int>(i) >= mine.first_tensor && static_cast<int>(i) < mine.end_tensor))
        units += static_cast<uint64_t>(in.model().tensors[i].parts);
    Progress progress("merge", local && comm.size() > 1 ? "units of rank 0" : "units", units, rank0);
    try {
      merge_shard(phases, *built.method, out, resume, progress,
                  local ? TensorGather::Route::Local : TensorGather::Route::ToRoot, &shard_seconds, &output_io, start);
    } catch (...) {
      resume.discard();
      throw;
    }
  }
  report.tensors = in.model().tensors.size();
  report.resumed.assign(static_cast<size_t>(comm.size()), 0);
  report.resumed[static_cast<size_t>(comm.rank())] = static_cast<uint64_t>(resume.reused());
  comm.sum(report.resumed.data(), report.resumed.size());
  report.merge = seconds_since(phase);
  report.cat = phases.cat_stats();

  phase = Clock::now();
  out.copy_base_tensors(in);
  const nlohmann::json inputs = describe_inputs(cfg, in, phases.shard_plan(), comm, built.features);
  out.commit(in, inputs, built.features);
  if (rank0)
    for (const nlohmann::json& f : inputs)
      if (f["role"].get<std::string>().rfind("exemplars:", 0) != 0) report.input_bytes += f["size"].get<uint64_t>();
  // No rank reports success before rank 0 has committed the output; then the saved tensors have served.
  resume.finish();
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
  for (const RankShard& s : phases.shard_plan().ranks) {
    report.shard_bytes.push_back(s.bytes);
    report.shard_cost.push_back(s.cost);
  }
  return report;
}

}  // namespace cm
