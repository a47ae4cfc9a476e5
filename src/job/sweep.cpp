#include "job/sweep.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <unordered_map>

#include "comm/job_communicator.hpp"
#include "common/error.hpp"
#include "common/fault.hpp"
#include "job/config.hpp"
#include "job/eval_config.hpp"
#include "job/eval_score.hpp"
#include "job/merge_loop.hpp"
#include "job/merge_phases.hpp"
#include "job/provenance.hpp"
#include "job/run_output.hpp"
#include "job/sweep_config.hpp"
#include "job/sweep_results.hpp"
#include "job/yaml_reader.hpp"

namespace cm {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Args {
  std::string config;
  std::vector<std::string> sets;
  int part = -1, parts = 0;  // --part I/N
  bool collect = false;
};

Args parse_args(const std::vector<std::string>& args) {
  const std::string usage = "sweep: usage: catmerge sweep CONFIG.yaml [--part I/N | --collect] [--set key=value ...]";
  if (args.empty() || args[0].rfind("--", 0) == 0) throw Error(usage);
  Args a;
  a.config = args[0];
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& w = args[i];
    auto value = [&](const std::string& flag) -> std::string {
      if (w.rfind(flag + "=", 0) == 0) return w.substr(flag.size() + 1);
      if (i + 1 >= args.size()) throw Error("sweep: " + flag + " needs a value");
      return args[++i];
    };
    auto is = [&](const std::string& flag) { return w == flag || w.rfind(flag + "=", 0) == 0; };
    if (is("--set")) {
      a.sets.push_back(value("--set"));
    } else if (is("--part")) {
      const std::string v = value("--part");
      const size_t slash = v.find('/');
      size_t used_i = 0, used_n = 0;
      try {
        if (slash == std::string::npos) throw std::invalid_argument("no slash");
        a.part = std::stoi(v.substr(0, slash), &used_i);
        a.parts = std::stoi(v.substr(slash + 1), &used_n);
      } catch (const std::exception&) {
        a.parts = 0;
      }
      if (a.parts < 1 || a.part < 0 || a.part >= a.parts || used_i != slash || used_n != v.size() - slash - 1)
        throw Error("sweep: --part expects I/N with 0 <= I < N (a Slurm array task: $SLURM_ARRAY_TASK_ID/N), got '" +
                    v + "'");
    } else if (w == "--collect") {
      a.collect = true;
    } else {
      throw Error("sweep: unexpected argument '" + w + "'; " + usage);
    }
  }
  if (a.collect && a.parts > 0) throw Error("sweep: --part and --collect are separate jobs: give one of them");
  return a;
}

// A point as the sweep merges it: the final scale of its method (none: merged alone).
struct PlannedPoint {
  std::optional<float> scale;
};

// Points that share everything but the final scale: one merge of the direction, or of a point alone.
struct Group {
  std::vector<int> points;
  bool direction = false;
};

// A point's model on this rank: the stored bytes (output dtype) of each tensor of its shard.
using ShardBytes = std::vector<std::vector<unsigned char>>;

// One group merged on this rank: per tensor of its shard, the merged values or the direction.
struct GroupValues {
  std::vector<std::vector<float>> tensors;
  bool direction = false;
  double seconds = 0;
};

class Sweep {
 public:
  Sweep(const JobConfig& cfg, const SweepConfig& sweep, const std::optional<EvalConfig>& eval, Communicator& comm)
      : cfg_(cfg), sweep_(sweep), eval_(eval), comm_(comm), journal_(sweep, cfg, comm) {
    plan_points();
  }

  // Scores every point of the groups of part `part` of `parts` (all: parts = 1) not yet in the journal.
  void score(int part, int parts) {
    std::vector<int> groups_left;
    for (size_t g = 0; g < groups_.size(); ++g) {
      if (static_cast<int>(g) % parts != part) continue;
      for (int p : groups_[g].points)
        if (!journal_.at(p)) {
          groups_left.push_back(static_cast<int>(g));
          break;
        }
    }
    int left = 0;
    for (const SweepPoint& p : sweep_.points) left += journal_.at(p.index) ? 0 : 1;
    if (comm_.rank() == 0)
      std::printf("catmerge sweep: %zu points in %zu groups; %d to score%s\n", sweep_.points.size(), groups_.size(), left,
                  parts > 1 ? (", part " + std::to_string(part) + "/" + std::to_string(parts)).c_str() : "");
    if (groups_left.empty()) return;
    open();
    std::unique_ptr<EvalScorer> scorer = make_scorer(sweep_.select_split);
    for (int g : groups_left) {
      const Group& group = groups_[static_cast<size_t>(g)];
      std::vector<int> pending;
      for (int p : group.points)
        if (!journal_.at(p)) pending.push_back(p);
      const GroupValues values = merge_group(group.points.front(), group.direction);
      for (int p : pending) {
        const auto start = Clock::now();
        const ShardBytes bytes = point_bytes(values, planned_[static_cast<size_t>(p)].scale);
        PointScore s;
        s.point = p;
        s.split = sweep_.select_split;
        s.merge_seconds = values.seconds / static_cast<double>(pending.size()) + seconds_since(start);
        const SweepPoint& point = sweep_.points[static_cast<size_t>(p)];
        if (sweep_.write == SweepWrite::All) write(point, bytes, point_output(point));
        if (scorer) evaluate(*scorer, bytes, &s);
        journal_.record(s);
        report(s);
        fault_point("point-scored");
      }
    }
  }

  // Every point scored: each method's chosen point merged again and scored on the test split, the selected one
  // written to output.path, and the tables. Throws cm::Error naming the points still missing.
  void collect() {
    std::vector<int> missing;
    for (const SweepPoint& p : sweep_.points)
      if (!journal_.at(p.index)) missing.push_back(p.index);
    if (!missing.empty())
      fail(sweep_.dir, std::to_string(missing.size()) + " of " + std::to_string(sweep_.points.size()) +
                           " points are not scored yet (the first: " + std::to_string(missing.front()) +
                           "); run every --part first");
    std::vector<int> chosen;
    std::vector<PointScore> tests;
    int selected = -1;
    if (eval_) {
      chosen = chosen_per_name(sweep_, journal_);
      for (int c : chosen)
        if (selected < 0 || journal_.at(c)->metric(sweep_.select_metric) >
                                journal_.at(selected)->metric(sweep_.select_metric))
          selected = c;
      const bool test = sweep_.test && sweep_.select_split != "test";
      std::unique_ptr<EvalScorer> scorer;
      for (int c : chosen) {
        if (!test && c != selected) continue;
        open();
        if (test && !scorer) scorer = make_scorer("test");
        const SweepPoint& point = sweep_.points[static_cast<size_t>(c)];
        const GroupValues values = merge_group(c, false);
        const ShardBytes bytes = point_bytes(values, std::nullopt);
        if (c == selected) write(point, bytes, cfg_.output_path);
        if (!scorer) continue;
        PointScore s;
        s.point = c;
        s.split = "test";
        s.merge_seconds = values.seconds;
        evaluate(*scorer, bytes, &s);
        tests.push_back(s);
        report(s);
      }
    }
    if (comm_.rank() != 0) return;
    std::vector<std::string> tasks;
    if (eval_) tasks = eval_->tasks;
    write_sweep_results(sweep_, journal_, chosen, tests, selected, tasks);
    summary(chosen, tests, selected);
  }

 private:
  // Every point's method built once with its hyperparameters (errors before any work), and the groups.
  void plan_points() {
    std::map<std::string, int> group_of;
    for (const SweepPoint& p : sweep_.points) {
      Params params(p.params, where(p));
      MergeContext probe;
      probe.num_tasks = static_cast<int>(cfg_.experts.size());
      const std::unique_ptr<Method> m = make_method(p.method, params, probe);
      PlannedPoint planned;
      // The scaled feature model depends on alpha: then every alpha has its own features, and its own merge.
      const bool alpha_in_features =
          m->needs_features() && feature_model_for(cfg_, p.method, p.params) == FeatureModel::Scaled;
      if (!alpha_in_features) planned.scale = m->final_scale();
      features_ = features_ || m->needs_features();
      fisher_ = fisher_ || p.method == "fisher";
      std::string key = p.method;
      for (const auto& [k, v] : p.params)
        if (!(planned.scale && k == "alpha")) key += "\n" + k + "=" + v;
      auto [it, fresh] = group_of.try_emplace(key, static_cast<int>(groups_.size()));
      if (fresh) groups_.push_back({{}, planned.scale.has_value()});
      groups_[static_cast<size_t>(it->second)].points.push_back(p.index);
      planned_.push_back(planned);
    }
  }

  std::string where(const SweepPoint& p) const {
    return cfg_.source + ": sweep point " + std::to_string(p.index) + " (" + p.method + " " + p.setting + ")";
  }

  // The inputs opened once, and the plan balanced by the summed cost of every group's method.
  void open() {
    if (phases_) return;
    phases_ = std::make_unique<MergePhases>(cfg_, comm_, features_, fisher_);
    std::vector<double> costs(phases_->inputs().model().tensors.size(), 0.0);
    for (const Group& g : groups_) {
      const SweepPoint& p = sweep_.points[static_cast<size_t>(g.points.front())];
      Params params(p.params, where(p));
      const std::vector<double> c =
          phases_->costs(*phases_->build(p.method, params, feature_model_for(cfg_, p.method, p.params)).method);
      for (size_t i = 0; i < costs.size(); ++i) costs[i] += c[i];
    }
    phases_->plan(costs);
    for (size_t i = 0; i < phases_->inputs().model().tensors.size(); ++i)
      index_[phases_->inputs().model().tensors[i].name] = i;
  }

  std::unique_ptr<EvalScorer> make_scorer(const std::string& split) {
    if (!eval_) return nullptr;
    open();
    return std::make_unique<EvalScorer>(*eval_, phases_->inputs().arch(), phases_->backend(), eval_->tasks, split,
                                        comm_.rank(), comm_.size());
  }

  // The method of point `p` over this rank's shard: its direction (for every alpha of its group) or its merge.
  GroupValues merge_group(int p, bool direction) {
    const auto start = Clock::now();
    const SweepPoint& point = sweep_.points[static_cast<size_t>(p)];
    Params params(point.params, where(point));
    const BuiltMethod built = phases_->build(point.method, params, feature_model_for(cfg_, point.method, point.params));
    phases_->features(built);
    phases_->prepare(*built.method);
    const JobInputs& in = phases_->inputs();
    const RankShard& mine = phases_->shard();
    GroupValues v;
    v.direction = direction;
    MergeLoop loop(in, *built.method, direction ? MergeValues::Direction : MergeValues::Merged);
    for (int i = mine.first_tensor; i < mine.end_tensor; ++i) {
      const TensorSpec& t = in.model().tensors[i];
      std::vector<float>& out = v.tensors.emplace_back(static_cast<size_t>(t.numel()));
      if (i + 1 < mine.end_tensor) in.will_need(in.model().tensors[i + 1]);
      loop.tensor(t, [&](const MergedBlock& b) { std::copy(b.values, b.values + b.n, out.begin() + b.first); }, [] {});
      in.release(t);  // the checkpoints' pages: memory stays the merged values, not the inputs
    }
    v.seconds = seconds_since(start);
    return v;
  }

  // A point's stored bytes: the group's direction scaled onto the base (apply_final_scale, as `run` does), or
  // the merged values; then in the output dtype.
  ShardBytes point_bytes(const GroupValues& v, std::optional<float> scale) const {
    const JobInputs& in = phases_->inputs();
    const RankShard& mine = phases_->shard();
    ShardBytes bytes;
    std::vector<float> merged;
    for (int i = mine.first_tensor; i < mine.end_tensor; ++i) {
      const TensorSpec& t = in.model().tensors[i];
      const std::vector<float>& values = v.tensors[static_cast<size_t>(i - mine.first_tensor)];
      const float* out = values.data();
      if (v.direction) {
        const std::vector<float> base = in.read(in.base(), t.name);
        in.release(t);
        merged.resize(values.size());
        apply_final_scale(base.data(), *scale, values.data(), merged.data(), values.size());
        out = merged.data();
      }
      const DType dtype = cfg_.output_dtype.value_or(t.dtype);
      std::vector<unsigned char>& b = bytes.emplace_back(values.size() * dtype_size(dtype));
      from_f32(dtype, out, b.data(), values.size());
    }
    return bytes;
  }

  // Every tensor of the model as its output stores it, on every rank: each rank sends its shard to the others.
  std::vector<std::vector<float>> share(const ShardBytes& mine) const {
    const JobInputs& in = phases_->inputs();
    const ShardPlan& plan = phases_->shard_plan();
    const int me = comm_.rank();
    std::vector<std::vector<unsigned char>> all(in.model().tensors.size());
    std::vector<std::unique_ptr<Request>> requests;
    for (size_t r = 0; r < plan.ranks.size(); ++r)
      for (int i = plan.ranks[r].first_tensor; i < plan.ranks[r].end_tensor; ++i) {
        const TensorSpec& t = in.model().tensors[i];
        const size_t n = static_cast<size_t>(t.numel()) * dtype_size(cfg_.output_dtype.value_or(t.dtype));
        if (static_cast<int>(r) == me) {
          all[i] = mine[static_cast<size_t>(i - plan.ranks[r].first_tensor)];
          for (int peer = 0; peer < comm_.size(); ++peer)
            if (peer != me) requests.push_back(comm_.isend(all[i].data(), n, peer));
        } else {
          all[i].resize(n);
          requests.push_back(comm_.irecv(all[i].data(), n, static_cast<int>(r)));
        }
      }
    for (auto& q : requests) q->wait();
    std::vector<std::vector<float>> values(all.size());
    for (size_t i = 0; i < all.size(); ++i) {
      const TensorSpec& t = in.model().tensors[i];
      values[i].resize(static_cast<size_t>(t.numel()));
      to_f32(cfg_.output_dtype.value_or(t.dtype), all[i].data(), values[i].data(), values[i].size());
    }
    return values;
  }

  void evaluate(EvalScorer& scorer, const ShardBytes& bytes, PointScore* s) {
    const std::vector<std::vector<float>> model = share(bytes);
    const JobInputs& in = phases_->inputs();
    std::unordered_map<std::string, std::vector<float>> others;  // tensors the merge does not cover, read once
    const WeightSource weights = [&](const std::string& name) {
      const auto it = index_.find(name);
      if (it != index_.end()) return lend_weight(model[it->second]);
      auto o = others.find(name);
      if (o == others.end()) o = others.emplace(name, in.read(in.base(), name)).first;
      return lend_weight(o->second);
    };
    const auto start = Clock::now();
    s->tasks = score_model(scorer, weights, comm_);
    s->eval_seconds = seconds_since(start);
    double flops = scorer.flops();
    comm_.sum(&flops, 1);
    s->gflops = s->eval_seconds > 0 ? flops / s->eval_seconds * 1e-9 : 0.0;
  }

  std::string point_output(const SweepPoint& p) const {
    return sweep_.dir + "/points/" + std::to_string(p.index) +
           (cfg_.output_format == OutputFormat::Safetensors ? "" : ".h5");
  }

  // A point's model through the run's output path (job/run_output): the same files a `run` of it writes.
  void write(const SweepPoint& p, const ShardBytes& bytes, const std::string& path) {
    const JobConfig pc = point_config(cfg_, p, path);
    Params params(p.params, where(p));
    const BuiltMethod built = phases_->build(p.method, params, feature_model_for(cfg_, p.method, p.params));
    const JobInputs& in = phases_->inputs();
    RunOutput out(pc, in, phases_->shard_plan(), params.used(), comm_);
    {
      TensorGather gather(phases_->shard_plan(), in.model(), out.stored_bytes(), comm_, out.route(), out.sink(),
                          [](int) {});
      const RankShard& mine = phases_->shard();
      for (int i = mine.first_tensor; i < mine.end_tensor; ++i) {
        TensorGather::Tensor dest = gather.begin(i);
        const std::vector<unsigned char>& b = bytes[static_cast<size_t>(i - mine.first_tensor)];
        dest.store(0, b.data(), b.size());
        gather.end(std::move(dest));
        gather.poll();
      }
      gather.finish();
    }
    out.copy_base_tensors(in);
    out.commit(in, describe_inputs(pc, in, phases_->shard_plan(), comm_, built.features), built.features);
    comm_.barrier();
    if (comm_.rank() == 0) std::printf("catmerge sweep: wrote %s (point %d)\n", path.c_str(), p.index);
  }

  void report(const PointScore& s) const {
    if (comm_.rank() != 0) return;
    const SweepPoint& p = sweep_.points[static_cast<size_t>(s.point)];
    if (s.tasks.empty()) {
      std::printf("catmerge sweep: point %d/%zu %s %s: merged in %.2f s\n", p.index, sweep_.points.size(),
                  p.method.c_str(), p.setting.c_str(), s.merge_seconds);
    } else {
      std::printf("catmerge sweep: point %d/%zu %s %s: %s %.2f (merge %.2f s, eval %.2f s, %.0f GFLOP/s)\n", p.index,
                  sweep_.points.size(), p.method.c_str(), p.setting.c_str(), s.split.c_str(),
                  s.metric(sweep_.select_metric), s.merge_seconds, s.eval_seconds, s.gflops);
    }
    std::fflush(stdout);
  }

  void summary(const std::vector<int>& chosen, const std::vector<PointScore>& tests, int selected) const {
    for (int c : chosen) {
      const SweepPoint& p = sweep_.points[static_cast<size_t>(c)];
      std::printf("catmerge sweep: %s: chose %s (%s %s %.2f", p.name.c_str(), p.setting.c_str(),
                  sweep_.select_split.c_str(), sweep_.select_metric.c_str(), journal_.at(c)->metric(sweep_.select_metric));
      for (const PointScore& t : tests)
        if (t.point == c) std::printf(", test %.2f", t.metric(sweep_.select_metric));
      std::printf(")%s\n", c == selected ? ": selected" : "");
    }
    std::printf("catmerge sweep: wrote %s/results.csv and results.json\n", sweep_.dir.c_str());
    std::fflush(stdout);
  }

  const JobConfig& cfg_;
  const SweepConfig& sweep_;
  const std::optional<EvalConfig>& eval_;
  Communicator& comm_;
  SweepJournal journal_;
  std::vector<PlannedPoint> planned_;  // per point
  std::vector<Group> groups_;
  bool features_ = false, fisher_ = false;
  std::unique_ptr<MergePhases> phases_;
  std::unordered_map<std::string, size_t> index_;  // tensor name -> index in the model
};

}  // namespace

int sweep_command(const std::vector<std::string>& args, int local_rank, Communicator& world,
                  std::shared_ptr<Communicator>& job) {
  const Args a = parse_args(args);
  JobConfig cfg = load_config(a.config, a.sets, false);
  cfg.local_rank = local_rank;
  const SweepConfig sweep = load_sweep_config(a.config, a.sets, cfg);
  std::optional<EvalConfig> eval;
  if (YamlReader(a.config, a.sets).root()["eval"]) eval = load_eval_config(a.config, a.sets);
  if (!eval && sweep.write != SweepWrite::All)
    fail(a.config, "sweep: without an eval section no point can be scored or selected; set sweep.write: all");
  if (sweep.spread == SweepSpread::Points && world.size() > 1) {
    // Each rank a job of its own over the whole model, taking every size-th group (as --part would), so many
    // small points need no exchange between ranks; then rank 0 collects from the journal they wrote.
    if (a.parts > 0) throw Error("sweep: --part splits the groups already; spread: points needs none");
    SoloCommunicator alone;
    if (!a.collect) Sweep(cfg, sweep, eval, alone).score(world.rank(), world.size());
    world.barrier();
    if (world.rank() == 0) Sweep(cfg, sweep, eval, alone).collect();
    world.barrier();
    return 0;
  }
  job = make_job_communicator(cfg.backend, world, cfg.local_rank);
  Sweep s(cfg, sweep, eval, *job);
  if (!a.collect) s.score(a.parts > 0 ? a.part : 0, a.parts > 0 ? a.parts : 1);
  if (a.parts == 0) s.collect();
  return 0;
}

}  // namespace cm
