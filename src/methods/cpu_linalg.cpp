// The CPU Linalg: CBLAS and LAPACKE (methods/host_dense_ops.hpp, methods/lapack.hpp), the reference for
// every device. It keeps a pool of host ops (their buffers) between calls; any thread may call it.
#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "common/error.hpp"
#include "common/parallel.hpp"
#include "methods/conflict_timer.hpp"
#include "methods/host_dense_ops.hpp"
#include "methods/lapack.hpp"
#include "methods/linalg.hpp"

namespace cm {
namespace {

// Below this many flops a unit's shared products run on one BLAS thread: there more threads gain nothing, and
// when other processes share the cores OpenBLAS's spinning threads made the zoo's CAT bases 10 times slower
// (5.8 s against 0.55 s beside a 2-thread job).
constexpr double kOneThreadFlops = 2e8;
// Scratch that tasks of one unit may always hold together, whatever the unit's size (ViT-L/14's MLP units
// run two tasks of 400 MB side by side).
constexpr int64_t kSideBySideBytes = int64_t{1} << 30;
// Scratch a pooled HostDenseOps keeps between calls (ViT-L/14 MLP units: at most 0.75 GB, kept).
constexpr int64_t kKeptBytes = int64_t{1} << 30;

// Host ops kept between calls, so that a call reuses the buffers the previous one grew instead of faulting in
// fresh pages for every unit. Any thread may take and give back. Ops come back holding more than kKeptBytes
// are emptied: each one serves as the shared ops of one call and a task's of the next, so kept whole they
// would each grow to both (three of a LLaMA-7B MLP unit's are 10 GB), and faulting such buffers in again
// costs a fraction of a second against the minutes of the unit that needs them.
class OpsPool {
 public:
  std::unique_ptr<HostDenseOps> take() {
    const std::lock_guard<std::mutex> lock(m_);
    if (free_.empty()) return std::make_unique<HostDenseOps>();
    std::unique_ptr<HostDenseOps> ops = std::move(free_.back());
    free_.pop_back();
    return ops;
  }
  void give(std::unique_ptr<HostDenseOps> ops) {
    if (ops->slot_bytes() > kKeptBytes) ops->release_slots();
    const std::lock_guard<std::mutex> lock(m_);
    free_.push_back(std::move(ops));
  }

 private:
  std::mutex m_;
  std::vector<std::unique_ptr<HostDenseOps>> free_;
};

// Ops taken from a pool for a scope.
class PooledOps {
 public:
  explicit PooledOps(OpsPool& pool) : pool_(pool), ops_(pool.take()) {}
  ~PooledOps() { pool_.give(std::move(ops_)); }
  PooledOps(const PooledOps&) = delete;
  PooledOps& operator=(const PooledOps&) = delete;
  HostDenseOps& operator*() { return *ops_; }

 private:
  OpsPool& pool_;
  std::unique_ptr<HostDenseOps> ops_;
};

class CpuLinalg : public Linalg {
 public:
  explicit CpuLinalg(const LinalgOptions& options) : o_(options) {}
  const char* name() const override { return "cpu"; }

  // The per-unit products on every BLAS thread, then the tasks spread over the CPU threads, each on one BLAS
  // thread: a task's solve is dominated by factorisations and small products that scale poorly across threads.
  std::vector<Basis> top_eigvecs(const ConflictProblem& p, int c, ConflictStats* stats) override {
    const size_t K = p.num_tasks();
    std::vector<Basis> bases(K);
    if (c <= 0 || K < 2) return bases;
    std::vector<int64_t> rows;
    for (const FeatureRows& r : p.rows) rows.push_back(r.n);
    const bool small = conflict_unit_flops(p.out, p.in, rows, c, o_.conflict.eigen) < kOneThreadFlops;
    PooledOps shared(pool_);
    std::optional<OneBlasThread> one;
    if (small) one.emplace();
    const ConflictBases solver(*shared, p, o_.conflict, stats);
    StepTimer timer(stats);
    // Tasks run side by side, each on one BLAS thread, while their scratch together stays within the bytes
    // of the unit's own K + 1 float32 tensors (or kSideBySideBytes, for small units); past that (a LLaMA
    // MLP's G_k of order 11008 and its factor take 3 GB a task), as many as fit, down to one at a time with
    // every thread in BLAS, so that memory follows the model's tensors and not the core count.
    int64_t task_bytes = 1;
    for (size_t k = 0; k < K; ++k) task_bytes = std::max(task_bytes, solver.task_bytes(k));
    const int64_t unit_bytes = static_cast<int64_t>(K + 1) * p.out * p.in * 4;
    const int64_t fit = std::max<int64_t>(1, std::max(unit_bytes, kSideBySideBytes) / task_bytes);
    const int workers = static_cast<int>(std::min<int64_t>({static_cast<int64_t>(K), cpu_threads(), fit}));
    std::vector<std::unique_ptr<PooledOps>> ops;
    for (int w = 0; w < workers; ++w) ops.push_back(std::make_unique<PooledOps>(pool_));
    std::vector<ConflictStats> counts(static_cast<size_t>(workers));
    if (!one && workers > 1) one.emplace();
    parallel_for(static_cast<int64_t>(K), workers, [&](int64_t k, int w) {
      bases[static_cast<size_t>(k)] = solver.basis(**ops[w], static_cast<size_t>(k), c, &counts[w]);
    });
    timer.lap(&ConflictStats::bases);
    if (stats)
      for (const ConflictStats& s : counts) stats->add(s);
    return bases;
  }

  void project(const std::vector<Basis>& bases, int64_t out, int64_t in, TaskVectors& tasks) override {
    const int workers = std::min<int>(static_cast<int>(tasks.size()), cpu_threads());
    std::vector<std::unique_ptr<PooledOps>> ops;
    for (int w = 0; w < workers; ++w) ops.push_back(std::make_unique<PooledOps>(pool_));
    std::optional<OneBlasThread> one;
    if (workers > 1) one.emplace();
    parallel_for(static_cast<int64_t>(tasks.size()), workers, [&](int64_t i, int w) {
      project_off_bases(**ops[w], bases, out, in, tasks[static_cast<size_t>(i)], static_cast<size_t>(i));
    });
  }

  void dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
             const double* b, double beta, double* c) override {
    cm::dgemm(trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
  }

  bool solve_spd(int64_t n, double* a, int64_t nrhs, double* b) override { return cm::solve_spd(n, a, nrhs, b); }

 private:
  LinalgOptions o_;
  OpsPool pool_;
};

}  // namespace

std::unique_ptr<Linalg> make_cpu_linalg(const LinalgOptions& options) { return std::make_unique<CpuLinalg>(options); }

}  // namespace cm
