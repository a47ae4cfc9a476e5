#pragma once
// Device memory that grows on demand and is kept for reuse: staging buffers and workspaces live as long as
// the backend, so a call allocates only when it needs more than any call before it.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <utility>

#include "cuda_check.hpp"

namespace cm {

template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() {
    if (p_) cudaFree(p_);  // no check: a destructor must not throw, and the context may be going down
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }

  // At least n elements; the contents are lost when the buffer grows.
  T* get(size_t n) {
    if (n > n_) {
      if (p_) CUDA_CHECK(cudaFree(p_));
      p_ = nullptr;
      n_ = 0;
      CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T)));
      n_ = n;
    }
    return p_;
  }
  T* data() const { return p_; }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

}  // namespace cm
