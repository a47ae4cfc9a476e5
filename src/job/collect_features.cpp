#include "job/collect_features.hpp"

#include "common/error.hpp"
#include "features/clip_forward.hpp"
#include "io/exemplars.hpp"

namespace cm {

namespace {

Images read_task_exemplars(const JobConfig& cfg, const ClipVisionConfig& clip, size_t k) {
  const ExpertConfig& e = cfg.experts[k];
  const std::string at = cfg.source + ": experts." + std::to_string(k) + ".exemplars";
  if (e.exemplars_file.empty()) fail(at, "required by method " + cfg.method);
  Images images = read_exemplars(e.exemplars_file, e.exemplars_group, cfg.exemplars, at);
  if (images.channels != clip.channels || images.height != clip.image_size || images.width != clip.image_size)
    fail(e.exemplars_file + ":" + e.exemplars_group,
         "pixel_values are [N, " + std::to_string(images.channels) + ", " + std::to_string(images.height) + ", " +
             std::to_string(images.width) + "], the model takes [N, " + std::to_string(clip.channels) + ", " +
             std::to_string(clip.image_size) + ", " + std::to_string(clip.image_size) + "]");
  return images;
}

// The sites whose statistics the tensors [first, end) use.
std::vector<std::string> sites_of(const ModelSpec& model, const RankShard& shard) {
  std::vector<std::string> sites;
  for (int i = shard.first_tensor; i < shard.end_tensor; ++i)
    if (!model.tensors[i].site.empty()) sites.push_back(model.tensors[i].site);
  return sites;
}

}  // namespace

std::vector<FeatureStore> collect_features(const JobConfig& cfg, const JobInputs& in, Backend& backend,
                                           const std::vector<double>& scales, const ShardPlan& plan,
                                           Communicator& comm) {
  if (!in.arch().has_forward())
    fail(cfg.source, "method " + cfg.method + " needs features, and the forward pass of architecture " + cfg.arch +
                         " is not implemented yet");
  const ClipVisionConfig& clip = *in.arch().clip;
  const int rank = comm.rank();
  const RankShard& mine = plan.ranks[rank];
  const bool has_next = rank + 1 < comm.size();
  const int next_first = has_next ? plan.ranks[rank + 1].first_stage : -1;
  const ClipForward forward(clip, backend);
  std::vector<FeatureStore> stores;
  for (size_t k = 0; k < in.num_experts(); ++k) {
    stores.emplace_back(sites_of(in.model(), mine));
    const Images images = read_task_exemplars(cfg, clip, k);
    const Checkpoint& expert = in.expert(k);
    // Each weight is dropped from this process's memory once read: the merge reads it again, from the page
    // cache, and until then it would only hold resident memory.
    const auto read = [&](const Checkpoint& ck, const std::string& name) {
      std::vector<float> w = in.read(ck, name);
      ck.release(name);
      return w;
    };
    WeightSource weights = [&](const std::string& name) { return read(expert, name); };
    if (!scales.empty()) {
      const float alpha = static_cast<float>(scales[k]);
      weights = [&, alpha](const std::string& name) {
        std::vector<float> w = read(in.base(), name);
        const std::vector<float> e = read(expert, name);
        for (size_t i = 0; i < w.size(); ++i) w[i] += alpha * (e[i] - w[i]);
        return w;
      };
    }
    // Stage 0 starts from the pixels, which every rank has; later stages from the rank before.
    std::vector<float> hidden;
    if (mine.first_stage > 0) {
      hidden.resize(static_cast<size_t>(images.n) * clip.tokens() * clip.hidden);
      comm.recv(hidden.data(), hidden.size(), rank - 1);
    }
    for (int s = mine.first_stage; s <= mine.last_stage; ++s) {
      if (s == next_first && s > 0) comm.send(hidden.data(), hidden.size(), rank + 1);
      if (s == 0)
        hidden = forward.embed(weights, images.pixels.data(), images.n, &stores[k]);
      else if (s <= clip.layers)
        forward.block(s - 1, weights, hidden, images.n, &stores[k]);
      else
        forward.final(weights, hidden, images.n, &stores[k]);
    }
    if (next_first == mine.last_stage + 1) comm.send(hidden.data(), hidden.size(), rank + 1);
  }
  return stores;
}

}  // namespace cm
