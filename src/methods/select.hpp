#pragma once
// Exact order statistics over values streamed in chunks, without sorting or holding them: two histogram
// passes over the order-preserving 32-bit key of each float (kernels/merge_math.hpp order_key). Pass 1
// counts the top 16 key bits per series, pass 2 the low 16 bits of the values inside each query's bin.
// Histograms, minima and maxima are reduced through the Reducer, so every rank gets the exact global
// answer; every rank must make the same calls (they are collective).
#include <cstdint>
#include <functional>
#include <vector>

#include "comm/reducer.hpp"

namespace cm {

// Emits every value of every series exactly once per call, in chunks of any size.
using ValueEmitter = std::function<void(int series, const float* values, size_t n)>;
using ValueSource = std::function<void(const ValueEmitter& emit)>;

struct OrderQuery {
  int series = 0;
  uint64_t position = 0;  // 0-based among the series' values sorted ascending; < count(series)
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
  ExactSelect(int num_series, Reducer& reducer);

  // Pass 1: the count, minimum, maximum and top-16-bit histogram of every series.
  void scan(const ValueSource& source);
  uint64_t count(int series) const { return count_[series]; }
  float min(int series) const { return static_cast<float>(min_[series]); }
  float max(int series) const { return static_cast<float>(max_[series]); }

  // Pass 2, after scan() and over the same values: the value at each query's position, in query order.
  std::vector<float> select(const std::vector<OrderQuery>& queries, const ValueSource& source) const;

 private:
  int num_series_;
  Reducer& reducer_;
  std::vector<uint64_t> top_;  // [series][65536]
  std::vector<uint64_t> count_;
  std::vector<double> min_, max_;
};

}  // namespace cm
