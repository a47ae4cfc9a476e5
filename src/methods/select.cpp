#include "methods/select.hpp"

#include <limits>

#include "common/error.hpp"
#include "merge_math.hpp"

namespace cm {


uint64_t clamp_position(double position, uint64_t d) {
  CM_ASSERT(d > 0);
  if (!(position > 0)) return 0;
  const double last = static_cast<double>(d - 1);
  return position >= last ? d - 1 : static_cast<uint64_t>(position);
}

ExactSelect::ExactSelect(int num_series, Reducer& reducer)
    : num_series_(num_series), reducer_(reducer), count_(num_series, 0) {
  CM_ASSERT(num_series > 0);
}

void ExactSelect::scan(const ValueSource& source) {
  top_.assign(kSelectBins * num_series_, 0);
  std::vector<uint32_t> lo_key(num_series_, UINT32_MAX), hi_key(num_series_, 0);
  source([&](int s, const float* v, size_t n) {
    CM_ASSERT(s >= 0 && s < num_series_);
    uint64_t* hist = &top_[kSelectBins * s];
    uint32_t lo = lo_key[s], hi = hi_key[s];
    for (size_t i = 0; i < n; ++i) {
      const uint32_t key = order_key(v[i]);
      ++hist[key_top_bin(key)];
      lo = key < lo ? key : lo;
      hi = key > hi ? key : hi;
    }
    lo_key[s] = lo;
    hi_key[s] = hi;
  });
  reducer_.sum(top_.data(), top_.size());

  // A series with no local values contributes the identities of min and max.
  min_.assign(num_series_, std::numeric_limits<double>::infinity());
  max_.assign(num_series_, -std::numeric_limits<double>::infinity());
  for (int s = 0; s < num_series_; ++s) {
    if (lo_key[s] <= hi_key[s]) {
      min_[s] = order_key_value(lo_key[s]);
      max_[s] = order_key_value(hi_key[s]);
    }
  }
  reducer_.min(min_.data(), min_.size());
  reducer_.max(max_.data(), max_.size());

  for (int s = 0; s < num_series_; ++s) {
    uint64_t n = 0;
    for (size_t b = 0; b < kSelectBins; ++b) n += top_[kSelectBins * s + b];
    count_[s] = n;
  }
}

void histogram_locate(const uint64_t* hist, uint64_t position, uint32_t* bin, uint64_t* rest) {
  uint64_t before = 0;
  for (uint32_t b = 0; b < kSelectBins; ++b) {
    if (position < before + hist[b]) {
      *bin = b;
      *rest = position - before;
      return;
    }
    before += hist[b];
  }
  CM_ASSERT(!"position beyond the histogram");
}

std::vector<float> ExactSelect::select(const std::vector<OrderQuery>& queries, const ValueSource& source) const {
  CM_ASSERT(!top_.empty());
  const size_t nq = queries.size();
  std::vector<uint32_t> top_bits(nq);
  std::vector<uint64_t> rest(nq);
  // The queries of each series, so that a value is only tested against its own series' bins.
  std::vector<std::vector<size_t>> of_series(num_series_);
  for (size_t q = 0; q < nq; ++q) {
    const OrderQuery& query = queries[q];
    CM_ASSERT(query.series >= 0 && query.series < num_series_ && query.position < count_[query.series]);
    histogram_locate(&top_[kSelectBins * query.series], query.position, &top_bits[q], &rest[q]);
    of_series[query.series].push_back(q);
  }

  std::vector<uint64_t> low(kSelectBins * nq, 0);  // [query][kSelectBins]
  source([&](int s, const float* v, size_t n) {
    CM_ASSERT(s >= 0 && s < num_series_);
    for (size_t q : of_series[s]) {
      const uint32_t bin = top_bits[q];
      uint64_t* hist = &low[kSelectBins * q];
      for (size_t i = 0; i < n; ++i) {
        const uint32_t key = order_key(v[i]);
        if (key_top_bin(key) == bin) ++hist[key_low_bin(key)];
      }
    }
  });
  reducer_.sum(low.data(), low.size());

  std::vector<float> values(nq);
  for (size_t q = 0; q < nq; ++q) {
    uint32_t low_bits = 0;
    uint64_t unused = 0;
    histogram_locate(&low[kSelectBins * q], rest[q], &low_bits, &unused);
    values[q] = order_key_value((top_bits[q] << 16) | low_bits);
  }
  return values;
}

}  // namespace cm
