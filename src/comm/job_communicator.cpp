#include "comm/job_communicator.hpp"

#include "backend/backend.hpp"
#if CATMERGE_HAVE_CUDA
#include "comm/nccl_communicator.hpp"
#endif

namespace cm {

std::shared_ptr<Communicator> make_job_communicator(const std::string& backend, Communicator& world,
                                                    [[maybe_unused]] int local_rank) {
#if CATMERGE_HAVE_CUDA
  // Several ranks only: MPI is initialised then, and NCCL bootstraps over MPI_COMM_WORLD.
  if (world.size() > 1 && backend_uses_cuda(backend))
    return std::make_shared<NcclCommunicator>(MPI_COMM_WORLD, local_rank);
#endif
  (void)backend;
  return std::shared_ptr<Communicator>(&world, [](Communicator*) {});
}

}  // namespace cm
