#pragma once
// Terse checks of CUDA runtime calls and kernel launches: a failure becomes a cm::Error that names the call,
// the file, the line and the MPI rank (0 outside MPI), as MPI_CHECK does (comm/mpi_check.hpp).
#include <cuda_runtime_api.h>

#include <string>

namespace cm {

[[noreturn]] void device_failed(const char* call, const std::string& what, const char* file, int line);

}  // namespace cm

#define CUDA_CHECK(call)                                                                  \
  do {                                                                                    \
    const cudaError_t cuda_check_rc_ = (call);                                            \
    if (cuda_check_rc_ != cudaSuccess)                                                    \
      ::cm::device_failed(#call, cudaGetErrorString(cuda_check_rc_), __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: a bad launch configuration is reported here, not by some later call.
#define CUDA_LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())
