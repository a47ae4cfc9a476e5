#include "common/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace cm {
namespace {

std::atomic<int> configured{0};

int from_environment() {
  for (const char* name : {"OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"}) {
    const char* v = std::getenv(name);
    if (v && std::atoi(v) > 0) return std::atoi(v);
  }
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace

int cpu_threads() {
  const int n = configured.load();
  return n > 0 ? n : from_environment();
}

void set_cpu_threads(int threads) { configured.store(std::max(threads, 0)); }

void parallel_for(int64_t count, int workers, const std::function<void(int64_t, int)>& body) {
  const int n = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(count, std::max(workers, 1))));
  std::atomic<int64_t> next{0};
  std::atomic<bool> stop{false};
  std::exception_ptr first;
  std::mutex m;
  const auto run = [&](int worker) {
    for (int64_t i; !stop.load() && (i = next.fetch_add(1)) < count;) {
      try {
        body(i, worker);
      } catch (...) {
        const std::lock_guard<std::mutex> lock(m);
        if (!first) first = std::current_exception();
        stop.store(true);
      }
    }
  };
  std::vector<std::thread> threads;
  for (int w = 1; w < n; ++w) threads.emplace_back(run, w);
  run(0);
  for (auto& t : threads) t.join();
  if (first) std::rethrow_exception(first);
}

}  // namespace cm
