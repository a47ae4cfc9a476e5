#include "job/inputs.hpp"

#include <algorithm>
#include <cmath>

#include "common/cpu_clones.hpp"
#include "common/error.hpp"
#include "common/parallel.hpp"
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

// expert[i] becomes task_delta(expert[i], base[i]). Returns the largest exponent field seen, all ones only for
// NaN or +-inf: a max reduction, so the loop vectorises.
CM_CPU_CLONES uint32_t subtract_base(float* __restrict expert, const float* __restrict base, size_t n) {
  uint32_t exponent = 0;
  for (size_t i = 0; i < n; ++i) {
    expert[i] = task_delta(expert[i], base[i]);
    exponent = std::max(exponent, float_bits(expert[i]) & 0x7f800000u);
  }
  return exponent;
}

}  // namespace

JobInputs::JobInputs(const JobConfig& cfg, bool with_fisher) {
  base_ = open_checkpoint(cfg.base);
  arch_ = describe_model(cfg.arch, *base_);
  for (size_t k = 0; k < cfg.experts.size(); ++k) {
    experts_.push_back(open_expert_checkpoint(cfg.experts[k].path, base_));
    check_matches(*experts_.back(), model());
    if (!with_fisher) continue;
    if (cfg.experts[k].fisher.empty())
      fail(cfg.source, "experts." + std::to_string(k) + ".fisher: required by method fisher");
    fisher_.push_back(open_checkpoint(cfg.experts[k].fisher));
    check_matches(*fisher_.back(), model());
  }
}

void JobInputs::read_into(const Checkpoint& ck, const std::string& name, int64_t first, int64_t count,
                          float* out) const {
  ck.read_into(name, first, count, out);
  bytes_read_ += static_cast<uint64_t>(count) * dtype_size(ck.find(name)->dtype);
}

std::vector<float> JobInputs::read(const Checkpoint& ck, const std::string& name) const {
  const TensorInfo* t = ck.find(name);
  CM_ASSERT(t != nullptr);
  std::vector<float> v(static_cast<size_t>(t->numel()));
  read_into(ck, name, 0, t->numel(), v.data());
  return v;
}

void JobInputs::read_values(const TensorSpec& t, int64_t first, int64_t count, UnitValues& values,
                            int threads) const {
  const size_t n = static_cast<size_t>(count);
  values.base.resize(n);
  read_into(*base_, t.name, first, count, values.base.data());
  values.tasks.resize(experts_.size());
  parallel_for(static_cast<int64_t>(experts_.size()), threads, [&](int64_t e, int) {
    const size_t k = static_cast<size_t>(e);
    std::vector<float>& tk = values.tasks[k];
    tk.resize(n);
    read_into(*experts_[k], t.name, first, count, tk.data());
    if (subtract_base(tk.data(), values.base.data(), n) != 0x7f800000u) return;
    for (size_t i = 0; i < n; ++i)
      if (!finite_value(tk[i]))
        fail(experts_[k]->file_of(t.name), "tensor '" + t.name + "': task vector is " +
                                               (std::isnan(tk[i]) ? "NaN" : "infinite") + " at element " +
                                               std::to_string(static_cast<int64_t>(i) + first));
  });
}

std::vector<const Checkpoint*> JobInputs::all() const {
  std::vector<const Checkpoint*> v = {base_.get()};
  for (const auto& e : experts_) v.push_back(e.get());
  for (const auto& f : fisher_) v.push_back(f.get());
  return v;
}

void JobInputs::will_need(const TensorSpec& t) const {
  for (const Checkpoint* ck : all()) ck->will_need(t.name);
}

void JobInputs::release(const TensorSpec& t) const {
  for (const Checkpoint* ck : all()) ck->release(t.name);
}

std::vector<MergeUnit> unit_blocks(const MergeUnit& unit, size_t num_tasks) {
  const int64_t rows = unit.shape.empty() ? 1 : unit.shape[0];
  const int64_t row = rows > 0 ? unit.numel() / rows : 1;
  const int64_t target = (512 << 10) / static_cast<int64_t>(4 * (num_tasks + 2));
  const int64_t per_block = std::max<int64_t>(1, target / std::max<int64_t>(row, 1));
  if (unit.shape.empty() || rows <= per_block) return {unit};
  std::vector<MergeUnit> blocks;
  for (int64_t r = 0; r < rows; r += per_block) {
    MergeUnit b = unit;
    b.offset = unit.offset + r * row;
    b.shape[0] = std::min(per_block, rows - r);
    blocks.push_back(b);
  }
  return blocks;
}

CheckpointUnitStream::CheckpointUnitStream(const JobInputs& in, int first, int end)
    : in_(in), first_(first), end_(end), workers_(cpu_threads()), values_(static_cast<size_t>(workers_)) {}

CheckpointUnitStream::CheckpointUnitStream(const JobInputs& in, const MergeUnit& unit)
    : in_(in), unit_(&unit), workers_(cpu_threads()), values_(static_cast<size_t>(workers_)) {}

void CheckpointUnitStream::visit_blocks(const TensorSpec& t, const std::vector<MergeUnit>& units,
                                        int64_t sample_stride, const Visitor& visit) {
  std::vector<MergeUnit> blocks;
  for (const MergeUnit& u : units)
    for (const MergeUnit& b : sample_stride > 1 ? sample_runs(u, sample_stride) : unit_blocks(u, in_.num_experts()))
      blocks.push_back(b);
  parallel_for(static_cast<int64_t>(blocks.size()), workers_, [&](int64_t i, int w) {
    const MergeUnit& b = blocks[static_cast<size_t>(i)];
    UnitValues& v = values_[static_cast<size_t>(w)];
    in_.read_values(t, b.offset, b.numel(), v);
    visit(w, b, v.base, v.tasks);
  });
}

void CheckpointUnitStream::for_each(const Visitor& visit, int64_t sample_stride) {
  if (unit_) return visit_blocks(*unit_->tensor, {*unit_}, sample_stride, visit);
  for (int i = first_; i < end_; ++i) {
    const TensorSpec& t = in_.model().tensors[i];
    visit_blocks(t, units_of(t), sample_stride, visit);
    in_.release(t);
  }
}

}  // namespace cm
