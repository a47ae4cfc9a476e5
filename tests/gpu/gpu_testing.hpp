#pragma once
// Scaffolding of the GPU tests: a fixture that skips without a GPU and owns a CudaContext on device 0,
// device copies of host vectors, and closeness in units of the float32 spacing.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "backend/cuda/cuda_backend.hpp"
#include "backend/cuda/cuda_context.hpp"

namespace cm::testing {

class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device visible";
    ctx_ = std::make_unique<CudaContext>(0);
  }
  void TearDown() override {
    for (void* p : owned_) cudaFree(p);
  }

  cudaStream_t stream() const { return ctx_->stream(); }
  const CudaContext& ctx() const { return *ctx_; }

  // A device copy of host, freed after the test.
  template <class T>
  T* device(const std::vector<T>& host) {
    T* d = device_zeros<T>(host.size());
    ctx_->copy_in(d, host.data(), host.size() * sizeof(T));
    return d;
  }
  template <class T>
  T* device_zeros(size_t n) {
    void* p = nullptr;
    EXPECT_EQ(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(T)), cudaSuccess);
    EXPECT_EQ(cudaMemset(p, 0, std::max<size_t>(n, 1) * sizeof(T)), cudaSuccess);
    owned_.push_back(p);
    return static_cast<T*>(p);
  }
  template <class T>
  std::vector<T> host(const T* d, size_t n) const {
    std::vector<T> h(n);
    ctx_->copy_out(h.data(), d, n * sizeof(T));
    return h;
  }

 private:
  std::unique_ptr<CudaContext> ctx_;
  std::vector<void*> owned_;
};

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// |got - want| within `ulps` float32 spacings of want (and at least of `floor`, for values near 0).
inline ::testing::AssertionResult near_ulps(float got, float want, float ulps, float floor = 1e-30f) {
  const float tol = ulps * std::max(std::fabs(want) * 1.1920929e-7f, floor);
  if (std::fabs(got - want) <= tol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got " << got << ", want " << want << " (tolerance " << tol << ")";
}

}  // namespace cm::testing
