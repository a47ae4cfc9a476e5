#pragma once
// The two histogram passes of exact selection (methods/select.cpp) on the GPU (histogram.cu): counts of the
// top 16 bits of every value's order key, with the smallest and largest key, then counts of the low 16 bits
// of the values inside one top bin. Bins and keys come from merge_math.hpp (order_key, key_top_bin,
// key_low_bin). Both passes add to what the device arrays hold, so values may come in chunks.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace cm::gpu {

// hist: device [kSelectBins] zeros; min_max: device [2] = {0xffffffff, 0}.
void histogram_start(unsigned long long* hist, unsigned int* min_max, cudaStream_t stream);

void histogram_top(const float* values, int64_t n, unsigned long long* hist, unsigned int* min_max,
                   cudaStream_t stream);

void histogram_low(const float* values, int64_t n, uint32_t top_bin, unsigned long long* hist, cudaStream_t stream);

}  // namespace cm::gpu
