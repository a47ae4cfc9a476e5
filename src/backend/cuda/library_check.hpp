#pragma once
// CUBLAS_CHECK and CUSOLVER_CHECK: as CUDA_CHECK (kernels/cuda_check.hpp), for the library calls; and the
// int dimensions those libraries take.
#include <cublas_v2.h>
#include <cusolverDn.h>

#include <climits>
#include <cstdint>
#include <string>

#include "common/error.hpp"
#include "cuda_check.hpp"

namespace cm {

inline int blas_dim(int64_t v) {
  CM_ASSERT(v >= 0 && v <= INT_MAX);
  return static_cast<int>(v);
}

}  // namespace cm

#define CUBLAS_CHECK(call)                                                                     \
  do {                                                                                         \
    const cublasStatus_t cublas_check_rc_ = (call);                                            \
    if (cublas_check_rc_ != CUBLAS_STATUS_SUCCESS)                                             \
      ::cm::device_failed(#call, cublasGetStatusString(cublas_check_rc_), __FILE__, __LINE__); \
  } while (0)

#define CUSOLVER_CHECK(call)                                                                                          \
  do {                                                                                                                \
    const cusolverStatus_t cusolver_check_rc_ = (call);                                                               \
    if (cusolver_check_rc_ != CUSOLVER_STATUS_SUCCESS)                                                                \
      ::cm::device_failed(#call, "cusolver status " + std::to_string(static_cast<int>(cusolver_check_rc_)), __FILE__, \
                          __LINE__);                                                                                  \
  } while (0)
