// PCB Merging against a direct transcription of METHODS.md that sorts whole scopes (fine at test size).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "method_testing.hpp"

namespace cm {
namespace {

using testing::TestModel;

float sorted_at(std::vector<float> v, double position) {
  std::sort(v.begin(), v.end());
  const double last = static_cast<double>(v.size() - 1);
  return v[static_cast<size_t>(std::min(std::max(position, 0.0), last))];
}

std::vector<float> minmax(const std::vector<float>& v) {
  const float lo = *std::min_element(v.begin(), v.end()), hi = *std::max_element(v.begin(), v.end());
  std::vector<float> out(v.size(), 0.0f);
  if (hi != lo)
    for (size_t i = 0; i < v.size(); ++i) out[i] = (v[i] - lo) / (hi - lo);
  return out;
}

// METHODS.md steps 1-5 over one scope: tasks[k] holds every entry of the scope, base likewise.
std::vector<float> pcb_reference(const std::vector<float>& base, const TaskVectors& tasks, double ratio, float alpha) {
  const size_t K = tasks.size(), n = base.size();
  const double d = static_cast<double>(n);
  std::vector<float> sum(n, 0.0f), num(n, 0.0f), den(n, 0.0f);
  for (const auto& t : tasks)
    for (size_t i = 0; i < n; ++i) sum[i] += t[i];
  for (size_t k = 0; k < K; ++k) {
    std::vector<float> mag(n), a(n), s(n), tc(n);
    for (size_t i = 0; i < n; ++i) mag[i] = std::fabs(tasks[k][i]);
    const float lo = sorted_at(mag, std::floor(d * 1e-4)), hi = sorted_at(mag, std::floor(d * (1.0 - 1e-4)) - 1);
    for (size_t i = 0; i < n; ++i) {
      a[i] = std::min(std::max(mag[i], lo), hi);
      tc[i] = (tasks[k][i] > 0 ? 1.0f : tasks[k][i] < 0 ? -1.0f : 0.0f) * a[i];
    }
    const std::vector<float> ma = minmax(a);
    for (size_t i = 0; i < n; ++i)
      s[i] = std::exp(static_cast<float>(K) * ma[i] * ma[i]) * std::tanh(tasks[k][i] * sum[i]);
    const float q = sorted_at(s, std::floor(d * (1.0 - ratio)));
    for (auto& x : s) x = std::max(x, q);
    const std::vector<float> scale = minmax(s);
    for (size_t i = 0; i < n; ++i) {
      num[i] += tc[i] * scale[i];
      den[i] += scale[i];
    }
  }
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = base[i] + alpha * (num[i] / std::max(den[i], 1e-12f));
  return out;
}

TestModel random_model() {
  TestModel m;
  const std::vector<int64_t> sizes = {40, 25, 60};
  for (size_t t = 0; t < sizes.size(); ++t) {
    TaskVectors tasks;
    for (uint32_t k = 0; k < 3; ++k) tasks.push_back(testing::noise(sizes[t], 100 * t + k, 0.01f * (k + 1)));
    tasks[0][3] = 0.0f;  // an exact zero and a duplicate
    tasks[1][4] = tasks[1][5];
    m.add("t" + std::to_string(t), Role::Other, {sizes[t]}, testing::noise(sizes[t], 50 + t), tasks);
  }
  return m;
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6f * (1.0f + std::fabs(want[i]))) << i;
}

TEST(MethodPcb, ModelScopeMatchesDefinition) {
  const TestModel m = random_model();
  std::vector<float> base;
  TaskVectors all(3);
  for (const TensorSpec& t : m.spec.tensors) {
    base.insert(base.end(), m.base.at(t.name).begin(), m.base.at(t.name).end());
    for (size_t k = 0; k < 3; ++k) all[k].insert(all[k].end(), m.tasks.at(t.name)[k].begin(), m.tasks.at(t.name)[k].end());
  }
  const std::vector<float> want = pcb_reference(base, all, 0.2, 0.8f);
  const auto out = testing::run_single("pcb", {{"ratio", "0.2"}, {"alpha", "0.8"}}, m);
  std::vector<float> got;
  for (const TensorSpec& t : m.spec.tensors) got.insert(got.end(), out.at(t.name).begin(), out.at(t.name).end());
  expect_close(got, want);
  EXPECT_EQ(testing::run_ranks("pcb", {{"ratio", "0.2"}, {"alpha", "0.8"}}, m, 2), out);
}

TEST(MethodPcb, TensorScopeMatchesDefinition) {
  const TestModel m = random_model();
  const auto out = testing::run_single("pcb", {{"scope", "tensor"}}, m);
  for (const TensorSpec& t : m.spec.tensors)
    expect_close(out.at(t.name), pcb_reference(m.base.at(t.name), m.tasks.at(t.name), 0.1, 1.0f));
}

TEST(MethodPcb, LargeScopeClampsTheTails) {
  // d = 30000: lo and hi are the entries at positions 3 and 29996 of sorted |T|, so the tails are clamped.
  TestModel m;
  const size_t n = 30000;
  m.add("w", Role::Other, {static_cast<int64_t>(n)}, std::vector<float>(n, 0.0f),
        {testing::noise(n, 1), testing::noise(n, 2)});
  expect_close(testing::run_single("pcb", {}, m).at("w"), pcb_reference(m.base.at("w"), m.tasks.at("w"), 0.1, 1.0f));
}

}  // namespace
}  // namespace cm
