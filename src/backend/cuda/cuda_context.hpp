#pragma once
// One GPU of this process: the device, the stream every call of the backend and the Linalg is ordered on,
// and the cuBLAS and cuSOLVER handles bound to that stream. Transfers are staged from and to pageable host
// memory; a download returns once the data is on the host.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cusolverDn.h>

#include <cstddef>

#include "backend/cuda/device_buffer.hpp"

namespace cm {

class CudaContext {
 public:
  explicit CudaContext(int device);
  ~CudaContext();
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;

  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }
  cublasHandle_t blas() const { return blas_; }
  cusolverDnHandle_t solver() const { return solver_; }
  void sync() const;

  template <class T>
  T* upload(DeviceBuffer<T>& dst, const T* src, size_t n) const {
    T* d = dst.get(n);
    copy_in(d, src, n * sizeof(T));
    return d;
  }
  void copy_in(void* device, const void* host, size_t bytes) const;
  void copy_out(void* host, const void* device, size_t bytes) const;  // waits for the stream

 private:
  int device_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  cusolverDnHandle_t solver_ = nullptr;
};

}  // namespace cm
