#include "job/inputs.hpp"

#include <cmath>

#include "common/error.hpp"
#include "task_vector.hpp"

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

JobInputs::JobInputs(const JobConfig& cfg, bool with_fisher) {
  base_ = open_checkpoint(cfg.base);
  arch_ = describe_model(cfg.arch, *base_);
  for (size_t k = 0; k < cfg.experts.size(); ++k) {
    experts_.push_back(open_checkpoint(cfg.experts[k].path));
    check_matches(*experts_.back(), model());
    if (!with_fisher) continue;
    if (cfg.experts[k].fisher.empty())
      fail(cfg.source, "experts." + std::to_string(k) + ".fisher: required by method fisher");
    fisher_.push_back(open_checkpoint(cfg.experts[k].fisher));
    check_matches(*fisher_.back(), model());
  }
}

std::vector<float> JobInputs::read(const Checkpoint& ck, const std::string& name) const {
  std::vector<float> v = ck.read(name);
  bytes_read_ += static_cast<uint64_t>(v.size()) * dtype_size(ck.find(name)->dtype);
  return v;
}

void JobInputs::read_task_vectors(const TensorSpec& t, std::vector<float>& base, TaskVectors& tasks) const {
  base = read(*base_, t.name);
  tasks.resize(experts_.size());
  for (size_t k = 0; k < experts_.size(); ++k) {
    tasks[k] = read(*experts_[k], t.name);
    std::vector<float>& tk = tasks[k];
    for (size_t i = 0; i < tk.size(); ++i) {
      tk[i] = task_delta(tk[i], base[i]);
      if (!finite_value(tk[i]))
        fail(experts_[k]->file_of(t.name), "tensor '" + t.name + "': task vector is " +
                                               (std::isnan(tk[i]) ? "NaN" : "infinite") + " at element " +
                                               std::to_string(i));
    }
  }
}

std::vector<float> unit_slice(const std::vector<float>& tensor, const MergeUnit& unit) {
  const auto first = tensor.begin() + unit.offset;
  return std::vector<float>(first, first + unit.numel());
}

void visit_units(const JobInputs& in, const TensorSpec& t, const UnitStream::Visitor& visit) {
  std::vector<float> base;
  TaskVectors tasks;
  in.read_task_vectors(t, base, tasks);
  if (t.parts == 1) {
    visit(units_of(t).front(), base, tasks);
    return;
  }
  for (const MergeUnit& u : units_of(t)) {
    TaskVectors part(tasks.size());
    for (size_t k = 0; k < tasks.size(); ++k) part[k] = unit_slice(tasks[k], u);
    visit(u, unit_slice(base, u), part);
  }
}

void CheckpointUnitStream::for_each(const Visitor& visit) {
  for (int i = first_; i < end_; ++i) visit_units(in_, in_.model().tensors[i], visit);
}

}  // namespace cm
