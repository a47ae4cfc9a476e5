#include "methods/linalg.hpp"

namespace cm {

Linalg& cpu_linalg() {
  static const std::unique_ptr<Linalg> cpu = make_cpu_linalg(LinalgOptions{});
  return *cpu;
}

}  // namespace cm
