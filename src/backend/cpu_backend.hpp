#pragma once
// The CPU backend (OpenBLAS for every matrix product; element math from kernels/*.hpp).
#include <memory>

#include "backend/backend.hpp"

namespace cm {

// threads > 0 sets OpenBLAS's thread count (process-wide); 0 leaves OpenBLAS's default.
std::unique_ptr<Backend> make_cpu_backend(int threads);

}  // namespace cm
