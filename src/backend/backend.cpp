#include "backend/backend.hpp"

#include "backend/cpu_backend.hpp"
#include "common/error.hpp"
#if CATMERGE_HAVE_CUDA
#include "backend/cuda/cuda_backend.hpp"
#endif

namespace cm {

bool backend_uses_cuda([[maybe_unused]] const std::string& name) {
#if CATMERGE_HAVE_CUDA
  return name == "cuda" || (name == "auto" && cuda_device_count() > 0);
#else
  return false;
#endif
}

std::unique_ptr<Backend> make_backend(const std::string& name, int threads, const std::string& where,
                                      [[maybe_unused]] int local_rank) {
#if CATMERGE_HAVE_CUDA
  if (backend_uses_cuda(name)) {
    if (cuda_device_count() == 0) fail(where, "cuda: no CUDA device is visible to this process");
    return make_cuda_backend(local_rank);
  }
#else
  if (name == "cuda") fail(where, "the cuda backend is not built into this catmerge (build with CATMERGE_CUDA=ON)");
#endif
  if (name == "cpu" || name == "auto") return make_cpu_backend(threads);
  fail(where, "unknown backend '" + name + "' (expected auto, cpu, cuda)");
}

}  // namespace cm
