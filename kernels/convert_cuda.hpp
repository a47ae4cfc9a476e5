#pragma once
// Storage-type conversions on the GPU (convert.cu) through dtype_convert.hpp, so a 16-bit value is rounded
// exactly as the CPU rounds it (nearest, ties to even). Device pointers.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace cm::gpu {

void to_bf16(const float* in, uint16_t* out, int64_t n, cudaStream_t stream);
void from_bf16(const uint16_t* in, float* out, int64_t n, cudaStream_t stream);
void to_f16(const float* in, uint16_t* out, int64_t n, cudaStream_t stream);
void from_f16(const uint16_t* in, float* out, int64_t n, cudaStream_t stream);

}  // namespace cm::gpu
