#include "job/inputs.hpp"

#include <cmath>

#include "common/error.hpp"

namespace cm {

namespace {

// Every model tensor must be in `ck` with the base's shape.
void check_matches(const Checkpoint& ck, const ModelSpec& model) {
  for (const TensorSpec& t : model.tensors) {
    const TensorInfo* info = ck.find(t.name);
    if (!info) fail(ck.path(), "tensor '" + t.name + "' of the base model is missing");
    if (info->shape != t.shape)
      fail(ck.file_of(t.name), "tensor '" + t.name + "' has shape " + shape_string(info->shape) +
                                   ", the base has " + shape_string(t.shape));
  }
}

}  // namespace

JobInputs open_inputs(const JobConfig& cfg, bool with_fisher) {
  JobInputs in;
  in.base = open_checkpoint(cfg.base);
  in.clip = clip_vit_config(*in.base);
  in.model = clip_vit_model(*in.base, in.clip);
  for (size_t k = 0; k < cfg.experts.size(); ++k) {
    in.experts.push_back(open_checkpoint(cfg.experts[k].path));
    check_matches(*in.experts.back(), in.model);
    if (!with_fisher) continue;
    if (cfg.experts[k].fisher.empty())
      fail(cfg.source, "experts." + std::to_string(k) + ".fisher: required by method fisher");
    in.fisher.push_back(open_checkpoint(cfg.experts[k].fisher));
    check_matches(*in.fisher.back(), in.model);
  }
  return in;
}

void read_task_vectors(const JobInputs& in, const TensorSpec& t, std::vector<float>& base, TaskVectors& tasks) {
  base = in.base->read(t.name);
  tasks.resize(in.experts.size());
  for (size_t k = 0; k < in.experts.size(); ++k) {
    tasks[k] = in.experts[k]->read(t.name);
    std::vector<float>& tk = tasks[k];
    for (size_t i = 0; i < tk.size(); ++i) {
      tk[i] -= base[i];
      if (!std::isfinite(tk[i]))
        fail(in.experts[k]->file_of(t.name), "tensor '" + t.name + "': task vector is " +
                                                 (std::isnan(tk[i]) ? "NaN" : "infinite") + " at element " +
                                                 std::to_string(i));
    }
  }
}

std::vector<float> unit_slice(const std::vector<float>& tensor, const MergeUnit& unit) {
  const auto first = tensor.begin() + unit.offset;
  return std::vector<float>(first, first + unit.numel());
}

void CheckpointUnitStream::for_each(const Visitor& visit) {
  std::vector<float> base;
  TaskVectors tasks;
  for (const TensorSpec& t : in_.model.tensors) {
    read_task_vectors(in_, t, base, tasks);
    if (t.parts == 1) {
      visit(units_of(t).front(), base, tasks);
      continue;
    }
    for (const MergeUnit& u : units_of(t)) {
      TaskVectors part(tasks.size());
      for (size_t k = 0; k < tasks.size(); ++k) part[k] = unit_slice(tasks[k], u);
      visit(u, unit_slice(base, u), part);
    }
  }
}

}  // namespace cm
