#include "job/merge_loop.hpp"

#include "common/parallel.hpp"

namespace cm {

MergeLoop::MergeLoop(const JobInputs& in, Method& method, MergeValues what)
    : in_(in), method_(method), what_(what), workers_(cpu_threads()) {
  values_.resize(static_cast<size_t>(workers_));
  result_.resize(static_cast<size_t>(workers_));
}

void MergeLoop::compute(const MergeUnit& part, UnitValues& v, std::vector<float>& out) {
  out.resize(static_cast<size_t>(part.numel()));
  if (what_ == MergeValues::Direction) {
    method_.direction(part, v.base, v.tasks, out.data());
  } else {
    method_.merge(part, v.base, v.tasks, out.data());
  }
}

void MergeLoop::tensor(const TensorSpec& t, const Consumer& consume, const std::function<void()>& between) {
  const std::vector<MergeUnit> units = units_of(t);
  if (!method_.elementwise(t)) {
    for (const MergeUnit& u : units) {
      in_.read_values(t, u.offset, u.numel(), values_[0], cpu_threads());
      compute(u, values_[0], result_[0]);
      consume({0, u.offset, u.numel(), values_[0].base.data(), result_[0].data()});
      between();
    }
    return;
  }
  // All the tensor's blocks at once, or unit by unit when each unit's statistics come first.
  std::vector<std::vector<MergeUnit>> rounds;
  for (const MergeUnit& u : units) {
    if (rounds.empty() || method_.unit_statistics()) rounds.emplace_back();
    for (const MergeUnit& b : unit_blocks(u, in_.num_experts())) rounds.back().push_back(b);
  }
  for (size_t r = 0; r < rounds.size(); ++r) {
    if (method_.unit_statistics()) {
      CheckpointUnitStream unit(in_, units[r]);
      method_.prepare_unit(unit);
    }
    const std::vector<MergeUnit>& blocks = rounds[r];
    parallel_for(static_cast<int64_t>(blocks.size()), workers_, [&](int64_t b, int w) {
      const MergeUnit& part = blocks[static_cast<size_t>(b)];
      UnitValues& v = values_[static_cast<size_t>(w)];
      std::vector<float>& out = result_[static_cast<size_t>(w)];
      in_.read_values(t, part.offset, part.numel(), v);
      compute(part, v, out);
      consume({w, part.offset, part.numel(), v.base.data(), out.data()});
    });
    between();
  }
}

}  // namespace cm
