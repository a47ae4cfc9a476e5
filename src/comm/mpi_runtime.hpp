#pragma once
// MPI for the life of a `run`: initialisation, the world communicator, the rank within the node (which
// picks the GPU), and the launch check. Commands that need no peers (inspect, plan) never start MPI.
#include <memory>

#include "comm/mpi_communicator.hpp"

namespace cm {

class MpiRuntime {
 public:
  MpiRuntime(int* argc, char*** argv);
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

  MpiCommunicator& world() { return *world_; }
  int local_rank() const { return local_rank_; }

 private:
  std::unique_ptr<MpiCommunicator> world_;
  int local_rank_ = 0;
};

// Throws cm::Error when Slurm started SLURM_NTASKS tasks but MPI sees a different world: each task then
// runs alone (srun without a working PMIx plugin), and a merge would be repeated N times, each one wrong.
void check_slurm_world(int world_size);

}  // namespace cm
