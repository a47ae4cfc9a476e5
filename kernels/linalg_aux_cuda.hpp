#pragma once
// Element steps of the CUDA Linalg (linalg_aux.cu): float32 <-> float64, the float32 rounding CAT applies
// after each projection, and the mirror that makes a lower-triangle result full. Device pointers.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace cm::gpu {

void widen(const float* in, double* out, int64_t n, cudaStream_t stream);
void narrow(const double* in, float* out, int64_t n, cudaStream_t stream);
// x = (double)(float)x: a float32 tensor's value held in float64.
void round_to_float(double* x, int64_t n, cudaStream_t stream);
// a[n, n] column-major: the upper triangle becomes the mirror of the lower one.
void mirror_lower(double* a, int64_t n, cudaStream_t stream);

}  // namespace cm::gpu
