#include "backend/cuda/cuda_context.hpp"

#include "backend/cuda/library_check.hpp"

namespace cm {

CudaContext::CudaContext(int device) : device_(device) {
  CUDA_CHECK(cudaSetDevice(device));
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  CUBLAS_CHECK(cublasCreate(&blas_));
  CUBLAS_CHECK(cublasSetStream(blas_, stream_));
  // Default math keeps SGEMM in FP32 (TF32 only with CUBLAS_TF32_TENSOR_OP_MATH): METHODS.md's arithmetic.
  CUBLAS_CHECK(cublasSetMathMode(blas_, CUBLAS_DEFAULT_MATH));
  CUSOLVER_CHECK(cusolverDnCreate(&solver_));
  CUSOLVER_CHECK(cusolverDnSetStream(solver_, stream_));
}

// No checks on the way down: a destructor must not throw.
CudaContext::~CudaContext() {
  if (solver_) cusolverDnDestroy(solver_);
  if (blas_) cublasDestroy(blas_);
  if (stream_) cudaStreamDestroy(stream_);
}

void CudaContext::sync() const { CUDA_CHECK(cudaStreamSynchronize(stream_)); }

void CudaContext::copy_in(void* device, const void* host, size_t bytes) const {
  if (bytes) CUDA_CHECK(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, stream_));
}

void CudaContext::copy_out(void* host, const void* device, size_t bytes) const {
  if (bytes) CUDA_CHECK(cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost, stream_));
  sync();
}

}  // namespace cm
