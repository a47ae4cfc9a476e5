#include "job/collect_features.hpp"

#include <algorithm>
#include <optional>

#include "common/error.hpp"
#include "common/parallel.hpp"
#include "job/progress.hpp"
#include "methods/host_dense_ops.hpp"

namespace cm {

std::vector<std::string> feature_sites(const ModelSpec& model, const RankShard& shard) {
  std::vector<std::string> sites;
  for (int i = shard.first_tensor; i < shard.end_tensor; ++i) {
    const std::string& site = model.tensors[i].site;
    if (!site.empty() && std::find(sites.begin(), sites.end(), site) == sites.end()) sites.push_back(site);
  }
  return sites;
}

FeatureInputs open_feature_inputs(const JobConfig& cfg, const ArchModel& arch, Backend& backend) {
  FeatureInputs fin;
  fin.forward = make_forward(arch, backend);
  for (size_t k = 0; k < cfg.experts.size(); ++k) {
    const ExpertConfig& e = cfg.experts[k];
    const std::string at = cfg.source + ": experts." + std::to_string(k) + ".exemplars";
    if (e.exemplars_file.empty()) fail(at, "required by method " + cfg.method);
    fin.exemplars.push_back(read_exemplars(e.exemplars_file, e.exemplars_group, cfg.exemplars, at));
    fin.forward->check_input(fin.exemplars.back(), e.exemplars_file + ":/" + e.exemplars_group + " (" + at + ")");
  }
  return fin;
}

ModelSpec with_feature_rows(const ModelSpec& model, const FeatureInputs& fin) {
  ModelSpec m = model;
  if (!fin.exemplars.empty())
    for (Site& s : m.sites) s.rows_per_exemplar = fin.forward->rows_per_exemplar(s, fin.exemplars[0]);
  return m;
}

// Tasks go in waves of one task per worker thread (each on one BLAS thread: a CLIP task's matrices, some 100
// rows, are too small to split well; an LLM's 1024 rows gain no more from one task per core than from BLAS), the rank's stages in at most two segments around the one send that happens
// before the last stage: a stage shared with the next rank, whose input hidden state it receives first.
std::vector<FeatureStore> collect_features(const FeatureInputs& fin, const JobInputs& in, Backend& backend,
                                           const std::vector<double>& scales,
                                           const ShardPlan& plan, Communicator& comm) {
  std::vector<int> all(in.num_experts());
  for (size_t k = 0; k < all.size(); ++k) all[k] = static_cast<int>(k);
  return collect_features(fin, in, backend, scales, plan, comm, all);
}

std::vector<FeatureStore> collect_features(const FeatureInputs& fin, const JobInputs& in, Backend& backend,
                                           const std::vector<double>& scales,
                                           const ShardPlan& plan, Communicator& comm, const std::vector<int>& tasks) {
  const Forward& forward = *fin.forward;
  const int rank = comm.rank();
  const RankShard& mine = plan.ranks[rank];
  const bool has_next = rank + 1 < comm.size();
  const int next_first = has_next ? plan.ranks[rank + 1].first_stage : -1;
  // The stage before which this rank sends the next rank its input; past last_stage: after all of them.
  const int send_before = next_first > mine.first_stage || (next_first == mine.first_stage && next_first > 0)
                              ? next_first
                              : mine.last_stage + 1;
  const size_t K = in.num_experts();
  CM_ASSERT(fin.exemplars.size() == K);
  for (size_t i = 0; i < tasks.size(); ++i)
    CM_ASSERT(tasks[i] >= 0 && static_cast<size_t>(tasks[i]) < K && (i == 0 || tasks[i - 1] < tasks[i]));
  const size_t T = tasks.size();
  std::vector<FeatureStore> stores;
  for (size_t k = 0; k < K; ++k) stores.emplace_back(feature_sites(in.model(), mine));
  std::vector<std::vector<float>> hidden(K);

  // Each weight is dropped from this process's memory once read: the merge reads it again, from the page
  // cache, and until then it would only hold resident memory.
  const auto read = [&](const Checkpoint& ck, const std::string& name) {
    std::vector<float> w = in.read(ck, name);
    ck.release(name);
    return w;
  };
  const auto weights_of = [&](size_t k) -> WeightSource {
    const Checkpoint& expert = in.expert(k);
    if (scales.empty()) return [&read, &expert](const std::string& name) { return own_weight(read(expert, name)); };
    const float alpha = static_cast<float>(scales[k]);
    return [&read, &in, &expert, alpha](const std::string& name) {
      std::vector<float> w = read(in.base(), name);
      const std::vector<float> e = read(expert, name);
      for (size_t i = 0; i < w.size(); ++i) w[i] += alpha * (e[i] - w[i]);
      return own_weight(std::move(w));
    };
  };
  const auto stages = [&](size_t k, int first, int end) {
    const WeightSource weights = weights_of(k);
    for (int s = first; s < end; ++s) forward.stage(s, weights, fin.exemplars[k], hidden[k], &stores[k]);
  };

  // The worker count of all K tasks, whichever run: a task then runs on one BLAS thread, or on all of them,
  // whatever the other tasks of its run.
  const int workers = backend.concurrent_callers() ? std::min<int>(static_cast<int>(K), cpu_threads()) : 1;
  Progress progress("features", "tasks", T, rank == 0);
  for (size_t wave = 0; wave < T; wave += static_cast<size_t>(workers)) {
    const size_t end = std::min(T, wave + static_cast<size_t>(workers));
    const auto task = [&](size_t i) { return static_cast<size_t>(tasks[i]); };
    const auto each = [&](const std::function<void(size_t k)>& body) {
      std::optional<OneBlasThread> one;
      if (workers > 1) one.emplace();
      parallel_for(static_cast<int64_t>(end - wave), workers,
                   [&](int64_t i, int) { body(task(wave + static_cast<size_t>(i))); });
    };
    // Stage 0 starts from the exemplars, which every rank has; later stages from the rank before.
    if (mine.first_stage > 0)
      for (size_t i = wave; i < end; ++i) {
        const size_t k = task(i);
        hidden[k].resize(static_cast<size_t>(forward.hidden_elements(mine.first_stage, fin.exemplars[k])));
        comm.recv(hidden[k].data(), hidden[k].size(), rank - 1);
      }
    each([&](size_t k) { stages(k, mine.first_stage, std::min(send_before, mine.last_stage + 1)); });
    if (has_next && next_first == send_before)
      for (size_t i = wave; i < end; ++i) comm.send(hidden[task(i)].data(), hidden[task(i)].size(), rank + 1);
    if (send_before <= mine.last_stage) each([&](size_t k) { stages(k, send_before, mine.last_stage + 1); });
    for (size_t i = wave; i < end; ++i) {
      hidden[task(i)] = std::vector<float>();
    }
    progress.advance(end - wave);
  }
  return stores;
}

}  // namespace cm
