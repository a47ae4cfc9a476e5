#pragma once
// Exact order statistics over values streamed in chunks, without sorting or holding them all. Values are
// compared by their order-preserving 32-bit key (kernels/merge_math.hpp order_key), so -0 < +0 and every
// answer is a value of the input, bit for bit.
//
// One pass over the values in the common case: a sample (about 1/kSampleStride of the values, in short runs)
// brackets each asked position between two keys; one full pass counts, per series, the values below each
// bracket and keeps the keys inside it; the answer is then selected among the kept keys in memory. Where a
// bracket misses its position or the kept keys would exceed kBracketCap, two histogram passes over all the
// values answer instead (pass 1 counts the top 16 key bits per series, pass 2 the low 16 bits inside each
// query's bin), so the answer never depends on the sample.
//
// Counts and histograms are reduced through the Reducer, so every rank gets the exact global
// answer and takes the same branch; every rank must make the same calls (they are collective).
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "comm/reducer.hpp"

namespace cm {

// Called with every value of every series exactly once per call (sample_stride 1), or with a sample of them
// (sample_stride > 1: runs of consecutive values, about one value in sample_stride), in chunks of any size,
// possibly from several threads at once: `worker` (below the ExactSelect's workers) names the calling thread,
// and calls with different workers may run concurrently.
using ValueEmitter = std::function<void(int worker, int series, const float* values, size_t n)>;
using ValueSource = std::function<void(const ValueEmitter& emit, int64_t sample_stride)>;

// The sample a bracket comes from.
constexpr int64_t kSampleStride = 64;
// Most keys a process keeps inside brackets (4 bytes each) before it answers by histograms instead.
constexpr size_t kBracketCap = size_t{1} << 25;

struct OrderQuery {
  int series = 0;
  // The 0-based position asked for among the series' d > 0 values sorted ascending: below d, or negative
  // to ask for nothing. A rule of d rather than a number, so that a sample can be asked the same quantile.
  std::function<int64_t(uint64_t d)> position;
};

// Bins of each histogram: one per value of 16 key bits.
constexpr size_t kSelectBins = 65536;

// The bin of a kSelectBins histogram that holds the 0-based `position` among its counts, and the position
// left inside that bin. position < the histogram's total.
void histogram_locate(const uint64_t* hist, uint64_t position, uint32_t* bin, uint64_t* rest);

// A sorted position computed in float64 as METHODS.md writes it, clamped to [0, d-1] (DESIGN.md). d > 0.
uint64_t clamp_position(double position, uint64_t d);

class ExactSelect {
 public:
  // workers: how many threads may emit at once (each counts into its own buffers).
  ExactSelect(int num_series, Reducer& reducer, int workers = 1);

  // The count of every series and the value at each query's position (a minimum or maximum is the query of
  // position 0 or d - 1).
  void run(const std::vector<OrderQuery>& queries, const ValueSource& source);

  uint64_t count(int series) const { return count_[series]; }
  // Query q's value; none where its series is empty or its position negative.
  std::optional<float> value(size_t q) const { return values_[q]; }
  // How many values of query q's series lie below its value, and how many equal it (by key: -0 and +0 differ);
  // 0 where it has no value. TIES' exact-k trim keeps some of the equal ones.
  uint64_t count_below(size_t q) const { return below_[q]; }
  uint64_t count_equal(size_t q) const { return equal_[q]; }
  // Full passes the last run() made over the source: 1 when every bracket held, 3 when histograms answered.
  int full_passes() const { return full_passes_; }

 private:
  int num_series_, workers_;
  Reducer& reducer_;
  std::vector<uint64_t> count_;
  std::vector<std::optional<float>> values_;
  std::vector<uint64_t> below_, equal_;
  int full_passes_ = 0;
};

}  // namespace cm
