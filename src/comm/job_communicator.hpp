#pragma once
// The communicator a run's collectives use: NCCL when its ranks drive GPUs (a CUDA build whose backend
// resolves to cuda), else the MPI world itself.
#include <memory>

#include "comm/mpi_communicator.hpp"

namespace cm {

// Collective over the world. The result may be the world itself (not owned): hold it through the pointer.
std::shared_ptr<Communicator> make_job_communicator(const std::string& backend, MpiCommunicator& world,
                                                    int local_rank);

}  // namespace cm
