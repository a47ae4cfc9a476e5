// catmerge command line: run, eval, plan, export, inspect, version. Every error is one line on stderr; under several
// ranks the failing rank names itself and ends every rank of the job (MPI_Abort), so none hangs.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <iostream>
#include <string>
#include <vector>

#include "arch/registry.hpp"
#include "comm/job_communicator.hpp"
#include "comm/mpi_runtime.hpp"
#include "common/error.hpp"
#include "io/checkpoint.hpp"
#include "io/temp_files.hpp"
#include "job/config.hpp"
#include "job/eval.hpp"
#include "job/export.hpp"
#include "job/inspect.hpp"
#include "job/merge_job.hpp"
#include "job/sweep.hpp"
#include "plan/shard_plan.hpp"

namespace {

const char* const kUsage =
    "usage: catmerge run CONFIG.yaml [--set key=value ...]   merge the experts the configuration names\n"
    "       catmerge plan CONFIG.yaml --ranks N [--set ...]  the shard plan for N ranks, from headers only\n"
    "       catmerge sweep CONFIG.yaml [--part I/N | --collect] [--set ...]\n"
    "                                                        merge and score every point of the grids (README \"Sweeps\")\n"
    "       catmerge eval CONFIG.yaml --model MERGED.h5      per-task accuracy (see README \"Evaluation\")\n"
    "       catmerge export MERGED.h5 OUT_DIR [--base DIR] [--shard-size S] [--dtype D]\n"
    "                                                        an output as a HuggingFace directory\n"
    "       catmerge inspect PATH                            list tensors, dtypes, shapes and roles\n"
    "       catmerge version\n";

struct Args {
  std::string config;
  std::vector<std::string> sets;
  int ranks = 0;
};

Args parse_args(const std::string& command, const std::vector<std::string>& args) {
  Args a;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& s = args[i];
    const bool has_value = i + 1 < args.size();
    if (s == "--set" && has_value) {
      a.sets.push_back(args[++i]);
    } else if (s.rfind("--set=", 0) == 0) {
      a.sets.push_back(s.substr(6));
    } else if (command == "plan" && s == "--ranks" && has_value) {
      try {
        a.ranks = std::stoi(args[++i]);
      } catch (const std::exception&) {
        throw cm::Error("plan: --ranks needs a number, got '" + args[i] + "'");
      }
    } else if (a.config.empty() && s.rfind("--", 0) != 0) {
      a.config = s;
    } else {
      throw cm::Error(command + ": unexpected argument '" + s + "'");
    }
  }
  if (a.config.empty()) throw cm::Error(command + ": missing CONFIG.yaml");
  if (command == "plan" && a.ranks < 1) throw cm::Error("plan: --ranks N (N >= 1) is required");
  return a;
}

// Whether a launcher (mpirun, srun) started this process: only then is MPI initialised. A plain
// `catmerge run` is a job of one process and skips MPI's start-up.
bool started_by_launcher() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "SLURM_STEP_ID"})
    if (std::getenv(v)) return true;
  return false;
}

// Runs `body` on every rank of the job with the failure path of the header comment. `body` may swap in
// the communicator its collectives use (NCCL on GPUs) through `job`, so that the abort goes through it.
template <class Body>
int with_ranks(int argc, char** argv, Body body) {
  std::unique_ptr<cm::MpiRuntime> mpi;
  if (started_by_launcher()) mpi = std::make_unique<cm::MpiRuntime>(&argc, &argv);
  cm::SoloCommunicator solo;
  cm::Communicator& world = mpi ? static_cast<cm::Communicator&>(mpi->world()) : solo;
  cm::remove_temp_files_on_signal();
  const std::string who = world.size() > 1 ? "rank " + std::to_string(world.rank()) + ": " : "";
  std::shared_ptr<cm::Communicator> job;
  try {
    if (mpi) cm::check_slurm_world(world.size());
    return body(mpi ? mpi->local_rank() : 0, world, job);
  } catch (const std::exception& e) {
    // One write per line, so that lines of several failing ranks do not interleave.
    const std::string line = "catmerge: error: " + who + e.what() + "\n";
    std::fputs(line.c_str(), stderr);
    std::fflush(stderr);
    if (world.size() > 1) (job ? *job : world).abort(1);
    return 1;
  }
}

int run(int local_rank, cm::Communicator& world, std::shared_ptr<cm::Communicator>& job,
        const std::vector<std::string>& args) {
  const Args a = parse_args("run", args);
  cm::JobConfig cfg = cm::load_config(a.config, a.sets);
  cfg.local_rank = local_rank;
  job = cm::make_job_communicator(cfg.backend, world, cfg.local_rank);
  const cm::MergeReport r = cm::run_merge(cfg, *job);
  if (job->rank() != 0) return 0;
  const auto gb = [](uint64_t bytes) { return static_cast<double>(bytes) / 1e9; };
  const uint64_t peak = *std::max_element(r.peak_rss.begin(), r.peak_rss.end());
  std::printf("catmerge: wrote %s (%s, %zu experts, %d ranks) in %.3g s [open %.3g, features %.3g, prepare %.3g, "
              "merge %.3g (output writes %.3g), write %.3g]; peak RSS %.2f GB (largest rank), inputs %.2f GB\n",
              cfg.output_path.c_str(), cfg.method.c_str(), cfg.experts.size(), job->size(), r.total, r.open,
              r.features, r.prepare, r.merge, r.output_io[0], r.write, gb(peak), gb(r.input_bytes));
  uint64_t resumed = 0;
  for (uint64_t n : r.resumed) resumed += n;
  if (resumed > 0)
    std::printf("  resumed: %llu of %zu tensors taken from %s.resume (saved by the interrupted run)\n",
                static_cast<unsigned long long>(resumed), r.tensors,
                cfg.output_path.c_str());
  if (cfg.method == "cat")
    std::printf("  cat on rank 0: products %.3g s, bases %.3g s (thread time: A %.3g s, G or C and M %.3g s, eigensolves "
                "%.3g s), projection %.3g s; tasks %lld formed, %lld reduced; eigensolves %lld direct, %lld shift-invert, "
                "%lld negative definite, %lld fallback (%lld factorisations, %lld applies); features %.3g GB\n",
                r.cat.products, r.cat.bases, r.cat.task_products, r.cat.task_forming, r.cat.task_eigen, r.cat.project,
                static_cast<long long>(r.cat.formed),
                static_cast<long long>(r.cat.reduced), static_cast<long long>(r.cat.direct),
                static_cast<long long>(r.cat.shift_invert), static_cast<long long>(r.cat.negative),
                static_cast<long long>(r.cat.fallback), static_cast<long long>(r.cat.shift_factorisations),
                static_cast<long long>(r.cat.shift_applies), gb(r.feature_bytes));
  for (size_t k = 0; k < r.bytes_read.size() && job->size() > 1; ++k)
    std::printf("  rank %zu: read %llu bytes, shard %llu bytes (base checkpoint), cost %.4g, shard done at %.3g s, "
                "output writes %.3g s, peak RSS %.2f GB\n",
                k, static_cast<unsigned long long>(r.bytes_read[k]), static_cast<unsigned long long>(r.shard_bytes[k]),
                r.shard_cost[k], r.shard_seconds[k], r.output_io[k], gb(r.peak_rss[k]));
  std::fflush(stdout);
  return 0;
}

int plan(const std::vector<std::string>& args) {
  const Args a = parse_args("plan", args);
  const cm::JobConfig cfg = cm::load_config(a.config, a.sets);
  const auto base = cm::open_checkpoint(cfg.base);
  const cm::ArchModel arch = cm::describe_model(cfg.arch, *base);
  std::cout << cm::describe_plan(cm::plan_run(cfg, a.ranks, arch), arch.model);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + (argc > 1 ? 2 : 1), argv + argc);
  const std::string command = argc > 1 ? argv[1] : "";
  if (command == "run")
    return with_ranks(argc, argv, [&](int local_rank, cm::Communicator& world, std::shared_ptr<cm::Communicator>& job) {
      return run(local_rank, world, job, args);
    });
  if (command == "sweep")
    return with_ranks(argc, argv, [&](int local_rank, cm::Communicator& world, std::shared_ptr<cm::Communicator>& job) {
      return cm::sweep_command(args, local_rank, world, job);
    });
  if (command == "eval")
    return with_ranks(argc, argv, [&](int, cm::Communicator& world, std::shared_ptr<cm::Communicator>&) {
      return cm::eval_command(args, world);
    });
  try {
    if (command == "plan") return plan(args);
    if (command == "export") {
      cm::remove_temp_files_on_signal();
      return cm::export_command(args);
    }
    if (command == "inspect" && args.size() == 1) {
      cm::inspect_checkpoint(args[0], std::cout);
      return 0;
    }
    if (command == "version") {
      std::cout << "catmerge " << CATMERGE_VERSION << "\n";
      return 0;
    }
    if (command == "help" || command == "--help" || command == "-h") {
      std::cout << kUsage;
      return 0;
    }
    std::cerr << kUsage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "catmerge: error: " << e.what() << "\n";
    return 1;
  }
}
