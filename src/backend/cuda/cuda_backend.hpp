#pragma once
// The CUDA backend: the Backend ops as cuBLAS SGEMM and the kernels of kernels/*.cu, on the GPU
// local_rank % device count. Host pointers in and out, staged through device buffers kept between calls
// (docs/DESIGN.md "CUDA": a device-resident activation path is the next step).
#include <memory>

#include "backend/backend.hpp"

namespace cm {

// CUDA devices this process sees; 0 when there is none or no driver.
int cuda_device_count();

std::unique_ptr<Backend> make_cuda_backend(int local_rank);

}  // namespace cm
