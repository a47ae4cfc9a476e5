#include "job/collect_features.hpp"

#include "common/error.hpp"
#include "features/clip_forward.hpp"
#include "io/exemplars.hpp"

namespace cm {

std::vector<FeatureStore> collect_features(const JobConfig& cfg, const JobInputs& in, Backend& backend,
                                           const std::vector<double>& scales) {
  std::vector<FeatureStore> stores(in.experts.size());
  ClipForward forward(in.clip, backend);
  for (size_t k = 0; k < in.experts.size(); ++k) {
    const ExpertConfig& e = cfg.experts[k];
    const std::string at = cfg.source + ": experts." + std::to_string(k) + ".exemplars";
    if (e.exemplars_file.empty()) fail(at, "required by method " + cfg.method);
    const Images images = read_exemplars(e.exemplars_file, e.exemplars_group, cfg.exemplars, at);
    if (images.channels != in.clip.channels || images.height != in.clip.image_size ||
        images.width != in.clip.image_size)
      fail(e.exemplars_file + ":" + e.exemplars_group,
           "pixel_values are [N, " + std::to_string(images.channels) + ", " + std::to_string(images.height) + ", " +
               std::to_string(images.width) + "], the model takes [N, " + std::to_string(in.clip.channels) + ", " +
               std::to_string(in.clip.image_size) + ", " + std::to_string(in.clip.image_size) + "]");
    const Checkpoint& expert = *in.experts[k];
    WeightSource weights = [&](const std::string& name) { return expert.read(name); };
    if (!scales.empty()) {
      const float alpha = static_cast<float>(scales[k]);
      weights = [&, alpha](const std::string& name) {
        std::vector<float> w = in.base->read(name);
        const std::vector<float> e = expert.read(name);
        for (size_t i = 0; i < w.size(); ++i) w[i] += alpha * (e[i] - w[i]);
        return w;
      };
    }
    forward.run(weights, images.pixels.data(), images.n, &stores[k]);
  }
  return stores;
}

}  // namespace cm
