#include "backend/backend.hpp"

#include "backend/cpu_backend.hpp"
#include "common/error.hpp"

namespace cm {

std::unique_ptr<Backend> make_backend(const std::string& name, int threads, const std::string& where) {
  if (name == "cpu" || name == "auto") return make_cpu_backend(threads);
  if (name == "cuda") fail(where, "the cuda backend is not built into this catmerge (build with CUDA)");
  fail(where, "unknown backend '" + name + "' (expected auto, cpu, cuda)");
}

}  // namespace cm
