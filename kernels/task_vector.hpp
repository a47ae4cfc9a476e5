#pragma once
// Task vectors T_k = theta_k - theta_0 in float32. A NaN or infinite entry is an input error that the job
// reports with the lowest element index, on the CPU and in the CUDA kernel (task_vector.cu) alike.
#include <cstdint>

#include "dtype_convert.hpp"
#include "host_device.hpp"

namespace cm {

CM_HD float task_delta(float expert, float base) { return expert - base; }

// False for NaN and +-inf (all exponent bits set).
CM_HD bool finite_value(float x) { return (float_bits(x) & 0x7f800000u) != 0x7f800000u; }

}  // namespace cm
