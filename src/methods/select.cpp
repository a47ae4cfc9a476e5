#include "methods/select.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/cpu_clones.hpp"
#include "common/error.hpp"
#include "merge_math.hpp"

namespace cm {

uint64_t clamp_position(double position, uint64_t d) {
  CM_ASSERT(d > 0);
  if (!(position > 0)) return 0;
  const double last = static_cast<double>(d - 1);
  return position >= last ? d - 1 : static_cast<uint64_t>(position);
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

namespace {

struct KeyAt {
  int series = 0;
  uint64_t position = 0;
};

// The key at an asked position, and how many values of the source lie below it and share it.
struct KeyFound {
  uint32_t key = 0;
  uint64_t below = 0, equal = 0;
};

// The two histogram passes of the header over one source (all of it, or its sample).
class HistogramSelect {
 public:
  HistogramSelect(int num_series, Reducer& reducer, int workers)
      : num_series_(num_series), workers_(workers), reducer_(reducer) {}

  // Pass 1: per series the count, the chunks emitted and the top-16-bit histogram.
  void scan(const ValueSource& source, int64_t stride) {
    const size_t S = static_cast<size_t>(num_series_), per_worker = kSelectBins * S;
    std::vector<uint64_t> hist(per_worker * static_cast<size_t>(workers_), 0);
    std::vector<uint64_t> chunks(S * static_cast<size_t>(workers_), 0);
    source(
        [&](int w, int s, const float* v, size_t n) {
          CM_ASSERT(s >= 0 && s < num_series_ && w >= 0 && w < workers_);
          uint64_t* h = &hist[per_worker * static_cast<size_t>(w) + kSelectBins * static_cast<size_t>(s)];
          for (size_t i = 0; i < n; ++i) ++h[key_top_bin(order_key(v[i]))];
          chunks[static_cast<size_t>(w) * S + static_cast<size_t>(s)] += n > 0;
        },
        stride);
    top_.assign(hist.begin(), hist.begin() + static_cast<std::ptrdiff_t>(per_worker));
    chunks_.assign(chunks.begin(), chunks.begin() + static_cast<std::ptrdiff_t>(S));
    for (size_t w = 1; w < static_cast<size_t>(workers_); ++w) {
      for (size_t b = 0; b < per_worker; ++b) top_[b] += hist[per_worker * w + b];
      for (size_t s = 0; s < S; ++s) chunks_[s] += chunks[w * S + s];
    }
    reducer_.sum(top_.data(), top_.size());
    reducer_.sum(chunks_.data(), chunks_.size());
    count_.assign(S, 0);
    for (size_t s = 0; s < S; ++s)
      for (size_t b = 0; b < kSelectBins; ++b) count_[s] += top_[kSelectBins * s + b];
  }

  uint64_t count(int s) const { return count_[s]; }
  uint64_t chunks(int s) const { return chunks_[s]; }
  // After scan(): the top 16 key bits of the value at a position below count(s).
  uint32_t top_bits_at(int s, uint64_t position) const {
    uint32_t bin = 0;
    uint64_t rest = 0;
    histogram_locate(&top_[kSelectBins * static_cast<size_t>(s)], position, &bin, &rest);
    return bin;
  }

  // Pass 2, after scan() and over the same values: the key at each asked position, in order.
  std::vector<KeyFound> select(const std::vector<KeyAt>& asks, const ValueSource& source, int64_t stride) const {
    const size_t nq = asks.size();
    std::vector<uint32_t> top_bits(nq);
    std::vector<uint64_t> rest(nq);
    // The asks of each series, so that a value is only tested against its own series' bins.
    std::vector<std::vector<size_t>> of_series(static_cast<size_t>(num_series_));
    for (size_t q = 0; q < nq; ++q) {
      const KeyAt& a = asks[q];
      CM_ASSERT(a.series >= 0 && a.series < num_series_ && a.position < count_[a.series]);
      histogram_locate(&top_[kSelectBins * static_cast<size_t>(a.series)], a.position, &top_bits[q], &rest[q]);
      of_series[a.series].push_back(q);
    }
    const size_t per_worker = kSelectBins * nq;
    std::vector<uint64_t> hist(per_worker * static_cast<size_t>(workers_), 0);  // [worker][ask][kSelectBins]
    if (nq > 0)
      source(
          [&](int w, int s, const float* v, size_t n) {
            CM_ASSERT(s >= 0 && s < num_series_ && w >= 0 && w < workers_);
            for (size_t q : of_series[s]) {
              const uint32_t bin = top_bits[q];
              uint64_t* h = &hist[per_worker * static_cast<size_t>(w) + kSelectBins * q];
              for (size_t i = 0; i < n; ++i) {
                const uint32_t key = order_key(v[i]);
                if (key_top_bin(key) == bin) ++h[key_low_bin(key)];
              }
            }
          },
          stride);
    std::vector<uint64_t> low(hist.begin(), hist.begin() + static_cast<std::ptrdiff_t>(per_worker));
    for (int w = 1; w < workers_; ++w)
      for (size_t b = 0; b < per_worker; ++b) low[b] += hist[per_worker * static_cast<size_t>(w) + b];
    reducer_.sum(low.data(), low.size());
    std::vector<KeyFound> found(nq);
    for (size_t q = 0; q < nq; ++q) {
      uint32_t low_bits = 0;
      uint64_t inside = 0;  // the position's rank among the values of its key
      histogram_locate(&low[kSelectBins * q], rest[q], &low_bits, &inside);
      found[q].key = (top_bits[q] << 16) | low_bits;
      found[q].below = asks[q].position - inside;
      found[q].equal = low[kSelectBins * q + low_bits];
    }
    return found;
  }

 private:
  int num_series_, workers_;
  Reducer& reducer_;
  std::vector<uint64_t> top_;  // [series][kSelectBins]
  std::vector<uint64_t> count_, chunks_;
};

// Keys shifted so that their unsigned order is the signed order of int32.
int32_t signed_order(uint32_t key) { return static_cast<int32_t>(key ^ 0x80000000u); }

// signed_order(order_key(x)) in three vector instructions: a float's bits as int32, the magnitude bits flipped
// where the sign is set.
int32_t signed_key(float x) {
  const int32_t b = static_cast<int32_t>(float_bits(x));
  return b ^ ((b >> 31) & 0x7fffffff);
}

// keys[i] = signed_key(v[i]) for a stretch.
[[gnu::noinline]] CM_CPU_CLONES void signed_keys(const float* __restrict v, size_t m, int32_t* __restrict keys) {
  for (size_t i = 0; i < m; ++i) keys[i] = signed_key(v[i]);
}

// Over a stretch of keys: inside[i] = whether keys[i] is in [from, to]; adds the keys below `from` to *under and
// returns how many are inside.
[[gnu::noinline]] CM_CPU_CLONES uint32_t bracket_stretch(const int32_t* __restrict keys, size_t m, int32_t from,
                                                         int32_t to, uint8_t* __restrict inside, uint64_t* under) {
  uint32_t below = 0, in = 0;
  for (size_t i = 0; i < m; ++i) {
    below += keys[i] < from;
    inside[i] = (keys[i] >= from) & (keys[i] <= to);
    in += inside[i];
  }
  *under += below;
  return in;
}

// Inclusive key bounds: the whole key range until a sample narrows it.
struct Bracket {
  uint32_t lo = 0, hi = UINT32_MAX;
};

// Normal quantiles of margin on the sample's estimate of a position. The sample's runs are counted as single
// draws (values in one run may be alike), so the margin is wide for runs of independent values.
constexpr double kMarginSigmas = 5.0;

// Brackets around each query's position in the sample: from the start of the histogram bin holding the sample's
// value `margin` ranks below the position the query asks of the sample's own count, to the end of the bin
// `margin` ranks above. Bounds need not be values (any keys bracket), so one pass over the sample does.
std::vector<Bracket> sample_brackets(const std::vector<OrderQuery>& queries, const ValueSource& source, int num_series,
                                     Reducer& reducer, int workers) {
  HistogramSelect sample(num_series, reducer, workers);
  sample.scan(source, kSampleStride);
  std::vector<Bracket> brackets(queries.size());
  for (size_t q = 0; q < queries.size(); ++q) {
    const int s = queries[q].series;
    const uint64_t n = sample.count(s);
    if (n == 0) continue;
    const int64_t asked = queries[q].position(n);
    const double center = static_cast<double>(std::clamp<int64_t>(asked, 0, static_cast<int64_t>(n) - 1));
    const double fraction = (center + 0.5) / static_cast<double>(n);
    const double draws = static_cast<double>(sample.chunks(s));
    const double spread = std::max(fraction * (1.0 - fraction), 1.0 / draws);
    const double margin = std::ceil(kMarginSigmas * static_cast<double>(n) * std::sqrt(spread / draws)) + 16.0;
    if (center - margin >= 0) brackets[q].lo = sample.top_bits_at(s, static_cast<uint64_t>(center - margin)) << 16;
    if (center + margin < static_cast<double>(n))
      brackets[q].hi = (sample.top_bits_at(s, static_cast<uint64_t>(center + margin)) << 16) | 0xffffu;
  }
  return brackets;
}

}  // namespace

ExactSelect::ExactSelect(int num_series, Reducer& reducer, int workers)
    : num_series_(num_series), workers_(std::max(workers, 1)), reducer_(reducer) {
  CM_ASSERT(num_series > 0);
}

void ExactSelect::run(const std::vector<OrderQuery>& queries, const ValueSource& source) {
  const size_t nq = queries.size(), S = static_cast<size_t>(num_series_), W = static_cast<size_t>(workers_);
  std::vector<std::vector<size_t>> of_series(S);
  for (size_t q = 0; q < nq; ++q) {
    CM_ASSERT(queries[q].series >= 0 && queries[q].series < num_series_);
    of_series[queries[q].series].push_back(q);
  }
  const std::vector<Bracket> brackets = sample_brackets(queries, source, num_series_, reducer_, workers_);

  // The full pass: per worker the counts, the values below each bracket and the values inside it.
  std::vector<uint64_t> count(S * W, 0), below(nq * W, 0);
  std::vector<std::vector<float>> kept(nq * W);
  std::vector<size_t> kept_size(W, 0);
  std::vector<uint64_t> overflow(1, 0);
  std::vector<uint8_t> worker_overflow(W, 0);
  const size_t cap = kBracketCap / W;
  source(
      [&](int w, int s, const float* v, size_t n) {
        CM_ASSERT(s >= 0 && s < num_series_ && w >= 0 && w < workers_);
        count[static_cast<size_t>(w) * S + static_cast<size_t>(s)] += n;
        // Stretches of keys in L1, offset to signed order (one SSE2 compare). Every loop vectorises but the copy
        // of the few kept values, which only visits the 8-entry words of the mask that hold one.
        constexpr size_t kStretch = 256;
        int32_t keys[kStretch];
        uint8_t inside[kStretch];
        float picked[kStretch];
        for (size_t first = 0; first < n; first += kStretch) {
          const size_t m = std::min(kStretch, n - first);
          signed_keys(v + first, m, keys);
          for (size_t q : of_series[s]) {
            const uint32_t in = bracket_stretch(keys, m, signed_order(brackets[q].lo), signed_order(brackets[q].hi),
                                                inside, &below[static_cast<size_t>(w) * nq + q]);
            if (in == 0) continue;
            if (kept_size[w] + in > cap) {
              worker_overflow[w] = 1;
              continue;
            }
            size_t j = 0;
            for (size_t b = 0; b < m; b += 8) {
              uint64_t word = 0;
              std::memcpy(&word, inside + b, std::min<size_t>(8, m - b));
              if (word == 0) continue;
              for (size_t i = b; i < std::min(m, b + 8); ++i) {  // without a branch: step past the kept ones
                picked[j] = v[first + i];
                j += inside[i];
              }
            }
            std::vector<float>& keep = kept[static_cast<size_t>(w) * nq + q];
            keep.insert(keep.end(), picked, picked + j);
            kept_size[w] += j;
          }
        }
      },
      1);

  count_.assign(S, 0);
  std::vector<uint64_t> below_all(nq, 0), kept_all(nq, 0);
  for (size_t w = 0; w < W; ++w) {
    overflow[0] += worker_overflow[w];
    for (size_t s = 0; s < S; ++s) count_[s] += count[w * S + s];
    for (size_t q = 0; q < nq; ++q) {
      below_all[q] += below[w * nq + q];
      kept_all[q] += kept[w * nq + q].size();
    }
  }
  reducer_.sum(count_.data(), count_.size());
  reducer_.sum(below_all.data(), below_all.size());
  reducer_.sum(kept_all.data(), kept_all.size());
  reducer_.sum(overflow.data(), overflow.size());

  // Each query's position in the full count; whether its bracket holds it.
  values_.assign(nq, std::nullopt);
  std::vector<size_t> answered;
  std::vector<uint64_t> positions;
  bool held = overflow[0] == 0;
  for (size_t q = 0; q < nq; ++q) {
    const uint64_t d = count_[queries[q].series];
    if (d == 0) continue;
    const int64_t p = queries[q].position(d);
    if (p < 0) continue;
    CM_ASSERT(static_cast<uint64_t>(p) < d);
    const uint64_t position = static_cast<uint64_t>(p);
    held = held && below_all[q] <= position && position < below_all[q] + kept_all[q];
    answered.push_back(q);
    positions.push_back(position);
  }

  std::vector<KeyAt> asks;
  std::vector<KeyFound> found;
  if (held) {  // among the kept values: series q of the in-memory source is query q's bracket
    for (size_t a = 0; a < answered.size(); ++a)
      asks.push_back({static_cast<int>(answered[a]), positions[a] - below_all[answered[a]]});
    const ValueSource kept_values = [&](const ValueEmitter& emit, int64_t) {
      for (size_t w = 0; w < W; ++w)
        for (size_t q = 0; q < nq; ++q) emit(0, static_cast<int>(q), kept[w * nq + q].data(), kept[w * nq + q].size());
    };
    HistogramSelect among(static_cast<int>(std::max<size_t>(nq, 1)), reducer_, 1);
    among.scan(kept_values, 1);
    found = among.select(asks, kept_values, 1);
    for (size_t a = 0; a < answered.size(); ++a) found[a].below += below_all[answered[a]];  // and those below the bracket
    full_passes_ = 1;
  } else {
    kept.clear();
    for (size_t a = 0; a < answered.size(); ++a) asks.push_back({queries[answered[a]].series, positions[a]});
    HistogramSelect all(num_series_, reducer_, workers_);
    all.scan(source, 1);
    found = all.select(asks, source, 1);
    full_passes_ = 3;
  }
  below_.assign(nq, 0);
  equal_.assign(nq, 0);
  for (size_t a = 0; a < answered.size(); ++a) {
    values_[answered[a]] = order_key_value(found[a].key);
    below_[answered[a]] = found[a].below;
    equal_[answered[a]] = found[a].equal;
  }
}

}  // namespace cm
