#include "comm/mpi_runtime.hpp"

#include <cstdlib>
#include <string>

#include "comm/mpi_check.hpp"
#include "common/error.hpp"

namespace cm {

MpiRuntime::MpiRuntime(int* argc, char*** argv) {
  int provided = 0;
  MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
  world_ = std::make_unique<MpiCommunicator>(MPI_COMM_WORLD);
  MPI_Comm node = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  MPI_CHECK(MPI_Comm_rank(node, &local_rank_));
  MPI_CHECK(MPI_Comm_free(&node));
}

MpiRuntime::~MpiRuntime() { MPI_Finalize(); }

void check_slurm_world(int world_size) {
  // Under mpirun (inside an allocation or not) the world is what mpirun started; SLURM_NTASKS then
  // describes the allocation or the daemons' step, not the MPI job. Only a task of an srun step is checked.
  // (A singleton MPI_Init sets OMPI_MCA_orte_launch too, with OMPI_MCA_ess=singleton.)
  const char* ess = std::getenv("OMPI_MCA_ess");
  const bool singleton = ess && std::string(ess) == "singleton";
  if ((std::getenv("OMPI_MCA_orte_launch") && !singleton) || !std::getenv("SLURM_STEP_ID")) return;
  const char* ntasks = std::getenv("SLURM_NTASKS");
  if (!ntasks) return;
  const int expected = std::atoi(ntasks);
  if (expected > 0 && expected != world_size)
    fail("launch", "Slurm started " + std::to_string(expected) + " tasks but MPI sees a world of " +
                       std::to_string(world_size) +
                       ": the MPI launch is broken (each task runs alone); use srun --mpi=pmix or launch/catmerge-launch");
}

}  // namespace cm
