#pragma once
// The process's CPU threads and a parallel loop over them. One budget for every kind of CPU parallelism
// (OpenBLAS and catmerge's own threads): runtime.threads when given, else OPENBLAS_NUM_THREADS (which
// launch/catmerge-launch sets to cores / ranks per node), else every core.
#include <cstdint>
#include <functional>

namespace cm {

// The thread budget; set_cpu_threads(0) goes back to the default.
int cpu_threads();
void set_cpu_threads(int threads);

// Runs body(i, worker) for i = 0..count-1 on min(count, workers) threads (the caller's among them), each i
// once, claimed in ascending order; worker is in [0, workers). The first exception thrown by any body is
// rethrown here after every thread has stopped taking new indices.
void parallel_for(int64_t count, int workers, const std::function<void(int64_t i, int worker)>& body);

}  // namespace cm
