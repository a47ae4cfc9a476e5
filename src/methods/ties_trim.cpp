#include "methods/ties_trim.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "common/error.hpp"
#include "methods/select.hpp"

namespace cm {

UnitIndex::UnitIndex(const ModelSpec& model) {
  for (const TensorSpec& t : model.tensors) {
    first_[t.name] = size_;
    size_ += static_cast<size_t>(t.parts);
  }
}

size_t UnitIndex::of(const MergeUnit& block) const {
  const auto it = first_.find(block.name());
  CM_ASSERT(it != first_.end());
  return it->second + static_cast<size_t>(block.part);
}

std::vector<TiesTaskTrim> TiesTrim::of_unit(size_t u) const {
  const auto first = trims_.begin() + static_cast<std::ptrdiff_t>(u * static_cast<size_t>(num_tasks_));
  return std::vector<TiesTaskTrim>(first, first + num_tasks_);
}

namespace {

constexpr int64_t kAllTies = std::numeric_limits<int64_t>::max();  // a cut that keeps every tie of a unit
constexpr int64_t kNoTies = 0;                                      // one that keeps none (flat indices are >= 0)

// The unit of a task where the running count of its ties passes r_k, and how many of its ties are kept.
struct Boundary {
  size_t unit = 0;
  uint64_t keep = 0;
  // On the rank that holds the unit: the block (by its first flat index) whose ties pass r_k, and how many of that
  // block's ties are kept; found marks the cut the last pass took from it.
  bool here = false;
  int64_t block = 0;
  uint64_t keep_in_block = 0;
  int64_t cut = kNoTies;
};

// A block's ties per task, as counted by the pass that finds the boundaries.
struct BlockTies {
  size_t unit = 0;
  int64_t offset = 0;
  std::vector<uint64_t> ties;  // [task]
};

bool is_tie(float t, float threshold) { return std::fabs(t) == threshold; }

// The flat index just past the n-th (1-based) entry of t at the threshold, from a block starting at `offset`.
int64_t cut_after_nth_tie(const std::vector<float>& t, float threshold, uint64_t n, int64_t offset) {
  uint64_t seen = 0;
  for (size_t i = 0; i < t.size(); ++i)
    if (is_tie(t[i], threshold) && ++seen == n) return offset + static_cast<int64_t>(i) + 1;
  CM_ASSERT(!"a block holds fewer ties than its count");
}

// Per unit, the running count of task k's ties in unit order gives each unit all, none or some of its ties.
std::optional<Boundary> place_cuts(const std::vector<uint64_t>& unit_ties, size_t units, int K, int k, uint64_t keep,
                                   TiesTrim& trim) {
  std::optional<Boundary> boundary;
  uint64_t before = 0;
  for (size_t u = 0; u < units; ++u) {
    const uint64_t here = unit_ties[u * static_cast<size_t>(K) + static_cast<size_t>(k)];
    if (before + here <= keep) {
      trim.at(u, k).cut = kAllTies;
    } else if (before >= keep) {
      trim.at(u, k).cut = kNoTies;
    } else {
      boundary = Boundary{u, keep - before};
    }
    before += here;
  }
  return boundary;
}

// Where in its unit the boundary lies, from this rank's blocks of that unit (none: another rank holds it).
void locate_in_unit(const std::vector<std::vector<BlockTies>>& blocks, int k, Boundary& b) {
  std::vector<const BlockTies*> of_unit;
  for (const auto& worker : blocks)
    for (const BlockTies& r : worker)
      if (r.unit == b.unit) of_unit.push_back(&r);
  if (of_unit.empty()) return;
  std::sort(of_unit.begin(), of_unit.end(), [](const BlockTies* x, const BlockTies* y) { return x->offset < y->offset; });
  uint64_t before = 0;
  for (const BlockTies* r : of_unit) {
    const uint64_t here = r->ties[static_cast<size_t>(k)];
    if (before + here >= b.keep) {
      b.here = true;
      b.block = r->offset;
      b.keep_in_block = b.keep - before;
      return;
    }
    before += here;
  }
  CM_ASSERT(!"the unit's blocks hold fewer ties than its count");
}

}  // namespace

TiesTrim ties_trim_scope(const Scope& scope, const UnitIndex& units, int K, double density, Reducer& reducer) {
  const size_t U = units.size(), W = static_cast<size_t>(scope.workers);
  const auto kept_of = [density](uint64_t d) { return std::floor(static_cast<double>(d) * density); };

  // 1. Each task's threshold: sorted |T_k| at position d - k (the k-th largest), none when k = 0.
  std::vector<OrderQuery> queries;
  for (int k = 0; k < K; ++k)
    queries.push_back({k, [kept_of](uint64_t d) {
                         const double kept = kept_of(d);
                         return kept >= 1 ? static_cast<int64_t>(static_cast<double>(d) - kept) : int64_t{-1};
                       }});
  ExactSelect select(K, reducer, scope.workers);
  select.run(queries, magnitudes_of(scope, K));

  TiesTrim trim(U, K);
  std::vector<float> threshold(static_cast<size_t>(K));
  std::vector<uint64_t> ties_kept(static_cast<size_t>(K), 0);
  std::vector<int> split;  // the tasks that keep some but not all of their ties
  for (int k = 0; k < K; ++k) {
    const std::optional<float> t = select.value(static_cast<size_t>(k));
    threshold[k] = t.value_or(std::numeric_limits<float>::infinity());  // nothing is kept without a threshold
    const uint64_t d = select.count(k), equal = select.count_equal(static_cast<size_t>(k));
    const uint64_t above = d - select.count_below(static_cast<size_t>(k)) - equal;
    if (t) ties_kept[k] = static_cast<uint64_t>(kept_of(d)) - above;
    for (size_t u = 0; u < U; ++u) trim.at(u, k) = {threshold[k], t ? kAllTies : kNoTies};
    if (t && ties_kept[k] < equal) split.push_back(k);
  }

  // 2. Where some ties of a task go: per-unit counts, reduced, then the running count in unit order.
  std::vector<std::optional<Boundary>> boundary(static_cast<size_t>(K));
  if (!split.empty()) {
    std::vector<std::vector<BlockTies>> blocks(W);
    scope.visit(
        [&](int w, const MergeUnit& block, const TaskVectors& tasks) {
          BlockTies r{units.of(block), block.offset, std::vector<uint64_t>(static_cast<size_t>(K), 0)};
          for (int k : split)
            for (float v : tasks[k]) r.ties[k] += is_tie(v, threshold[k]);
          blocks[static_cast<size_t>(w)].push_back(std::move(r));
        },
        1);
    std::vector<uint64_t> unit_ties(U * static_cast<size_t>(K), 0);
    for (const auto& worker : blocks)
      for (const BlockTies& r : worker)
        for (int k : split) unit_ties[r.unit * static_cast<size_t>(K) + static_cast<size_t>(k)] += r.ties[k];
    reducer.sum(unit_ties.data(), unit_ties.size());
    for (int k : split) {
      // None when the running count reaches the kept ties exactly at a unit's end (or they are 0): then every
      // unit keeps all or none of its ties.
      boundary[k] = place_cuts(unit_ties, U, K, k, ties_kept[k], trim);
      if (boundary[k]) locate_in_unit(blocks, k, *boundary[k]);
    }
  }

  // 3. The majority sign, counted on the trimmed values; the boundary blocks' cuts are found on the way. A block
  // of a boundary unit before the boundary block keeps all its ties and one after it none, which the boundary
  // block's first index as the cut says.
  MajoritySign majority(scope.workers);
  scope.visit(
      [&](int w, const MergeUnit& block, const TaskVectors& tasks) {
        const size_t u = units.of(block);
        std::vector<TiesTaskTrim> trims = trim.of_unit(u);
        for (int k : split) {
          if (!boundary[k] || boundary[k]->unit != u) continue;
          Boundary& b = *boundary[k];
          CM_ASSERT(b.here);
          trims[k].cut = b.block;
          if (block.offset == b.block) {
            b.cut = cut_after_nth_tie(tasks[k], threshold[k], b.keep_in_block, block.offset);
            trims[k].cut = b.cut;
          }
        }
        majority.add(w, tasks, trims, block.offset, tasks[0].size());
      },
      1);
  trim.majority = majority.reduce(reducer);
  for (int k : split)
    if (boundary[k] && boundary[k]->here) trim.at(boundary[k]->unit, k).cut = boundary[k]->cut;
  return trim;
}

}  // namespace cm
