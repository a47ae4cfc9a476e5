#pragma once
// Test scaffolding for the merge methods: a hand-made model held in memory, a UnitStream over it (all of
// it, or one simulated rank's share), a Reducer that all-reduces between threads (simulated ranks), and a
// driver that runs prepare() and merge() the way the job does.
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "methods/method.hpp"

namespace cm::testing {

struct TestModel {
  ModelSpec spec;
  std::map<std::string, std::vector<float>> base;
  std::map<std::string, TaskVectors> tasks;

  // Tensors must all be added before any unit is taken (units point into spec.tensors).
  void add(const std::string& name, Role role, std::vector<int64_t> shape, std::vector<float> base_values,
           TaskVectors task_values, const std::string& site = "", int parts = 1) {
    TensorSpec t;
    t.name = name;
    t.role = role;
    t.shape = std::move(shape);
    t.site = site;
    t.parts = parts;
    EXPECT_EQ(static_cast<int64_t>(base_values.size()), t.numel());
    for (const auto& v : task_values) EXPECT_EQ(static_cast<int64_t>(v.size()), t.numel());
    spec.tensors.push_back(t);
    base[name] = std::move(base_values);
    tasks[name] = std::move(task_values);
  }
  int num_tasks() const { return static_cast<int>(tasks.begin()->second.size()); }
};

// The units of `model` whose running index is rank (mod ranks), each sliced out of its tensor; or one unit.
class MemoryStream : public UnitStream {
 public:
  MemoryStream(const TestModel& model, int rank = 0, int ranks = 1) : model_(model), rank_(rank), ranks_(ranks) {}
  MemoryStream(const TestModel& model, const MergeUnit& only) : model_(model), only_(&only) {}
  void for_each(const Visitor& visit, int64_t sample_stride) override {
    int index = 0;
    for (const TensorSpec& t : model_.spec.tensors) {
      for (const MergeUnit& unit : units_of(t)) {
        if (only_ ? (unit.tensor->name != only_->name() || unit.part != only_->part) : index++ % ranks_ != rank_)
          continue;
        for (const MergeUnit& u : sample_runs(unit, sample_stride)) {
          const auto slice = [&](const std::vector<float>& v) {
            return std::vector<float>(v.begin() + u.offset, v.begin() + u.offset + u.numel());
          };
          TaskVectors tasks;
          for (const auto& v : model_.tasks.at(t.name)) tasks.push_back(slice(v));
          visit(0, u, slice(model_.base.at(t.name)), tasks);
        }
      }
    }
  }

 private:
  const TestModel& model_;
  int rank_ = 0, ranks_ = 1;
  const MergeUnit* only_ = nullptr;
};

// Shared state of simulated ranks; each rank (thread) holds its own GroupReducer on it.
struct ReduceHub {
  explicit ReduceHub(int n) : ranks(n) {}
  int ranks;
  std::mutex m;
  std::condition_variable cv;
  int arrived = 0;
  bool draining = false;
  std::vector<double> dacc;
  std::vector<uint64_t> uacc;
};

class GroupReducer : public Reducer {
 public:
  explicit GroupReducer(ReduceHub& hub) : hub_(hub) {}
  void sum(uint64_t* v, size_t n) override { reduce(v, n, hub_.uacc, [](uint64_t a, uint64_t b) { return a + b; }); }
  void sum(double* v, size_t n) override { reduce(v, n, hub_.dacc, [](double a, double b) { return a + b; }); }
  void max(double* v, size_t n) override { reduce(v, n, hub_.dacc, [](double a, double b) { return std::max(a, b); }); }
  void min(double* v, size_t n) override { reduce(v, n, hub_.dacc, [](double a, double b) { return std::min(a, b); }); }

 private:
  // Every rank adds its values; once all have, every rank reads the total; the next round waits for that.
  template <class T, class Op>
  void reduce(T* v, size_t n, std::vector<T>& acc, Op op) {
    std::unique_lock<std::mutex> lock(hub_.m);
    hub_.cv.wait(lock, [&] { return !hub_.draining; });
    if (hub_.arrived == 0) {
      acc.assign(v, v + n);
    } else {
      for (size_t i = 0; i < n; ++i) acc[i] = op(acc[i], v[i]);
    }
    if (++hub_.arrived == hub_.ranks) {
      hub_.draining = true;
      hub_.cv.notify_all();
    } else {
      hub_.cv.wait(lock, [&] { return hub_.draining; });
    }
    std::copy(acc.begin(), acc.end(), v);
    if (--hub_.arrived == 0) {
      hub_.draining = false;
      hub_.cv.notify_all();
    }
  }
  ReduceHub& hub_;
};

using Merged = std::map<std::string, std::vector<float>>;             // tensor name -> merged values
using UnitResults = std::map<std::pair<std::string, int>, std::vector<float>>;  // (tensor, part) -> values

inline std::unique_ptr<Method> make(const std::string& name, std::map<std::string, std::string> params,
                                    const MergeContext& ctx) {
  Params p(std::move(params), "test.yaml: method");
  return make_method(name, p, ctx);
}

// prepare() over the stream, then merge() of each of its units (after prepare_unit() over it, for methods
// with unit statistics), as the job does.
inline UnitResults run(Method& method, UnitStream& stream, const TestModel& model) {
  method.prepare(stream);
  UnitResults out;
  stream.for_each(
      [&](int, const MergeUnit& u, const std::vector<float>& base, const TaskVectors& original) {
        if (method.unit_statistics()) {
          MemoryStream unit(model, u);
          method.prepare_unit(unit);
        }
        TaskVectors tasks = original;
        std::vector<float>& merged = out[{u.name(), u.part}];
        merged.assign(static_cast<size_t>(u.numel()), 0.0f);
        method.merge(u, base, tasks, merged.data());
      },
      1);
  return out;
}

inline Merged assemble(const TestModel& model, const UnitResults& units) {
  Merged all;
  for (const TensorSpec& t : model.spec.tensors) {
    std::vector<float>& m = all[t.name];
    m.assign(t.numel(), 0.0f);
    for (const MergeUnit& u : units_of(t)) {
      const std::vector<float>& v = units.at({t.name, u.part});
      std::copy(v.begin(), v.end(), m.begin() + u.offset);
    }
  }
  return all;
}

inline MergeContext context_for(const TestModel& model, MergeContext ctx) {
  ctx.num_tasks = model.num_tasks();
  ctx.model = &model.spec;
  return ctx;
}

inline Merged run_single(const std::string& name, std::map<std::string, std::string> params, const TestModel& model,
                         MergeContext ctx = {}) {
  LocalReducer local;
  ctx = context_for(model, ctx);
  ctx.reducer = &local;
  std::unique_ptr<Method> m = make(name, std::move(params), ctx);
  MemoryStream stream(model);
  return assemble(model, run(*m, stream, model));
}

// The same merge on `ranks` simulated ranks (threads), each with its share of the units.
inline Merged run_ranks(const std::string& name, const std::map<std::string, std::string>& params,
                        const TestModel& model, int ranks, MergeContext ctx = {}) {
  ReduceHub hub(ranks);
  std::vector<UnitResults> parts(ranks);
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r) {
    threads.emplace_back([&, r] {
      GroupReducer reducer(hub);
      MergeContext c = context_for(model, ctx);
      c.reducer = &reducer;
      std::unique_ptr<Method> m = make(name, params, c);
      MemoryStream stream(model, r, ranks);
      parts[r] = run(*m, stream, model);
    });
  }
  for (auto& t : threads) t.join();
  UnitResults all;
  for (const UnitResults& p : parts) all.insert(p.begin(), p.end());
  return assemble(model, all);
}

// Deterministic pseudo-random values in [-scale, scale).
inline std::vector<float> noise(size_t n, uint32_t seed, float scale = 1.0f) {
  std::vector<float> v(n);
  uint32_t x = seed * 2654435761u + 12345u;
  for (auto& f : v) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    f = scale * (static_cast<float>(x >> 8) / 8388608.0f - 1.0f);
  }
  return v;
}

}  // namespace cm::testing
