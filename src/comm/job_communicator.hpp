#pragma once
// The communicator a run's collectives use: NCCL when several ranks drive GPUs (a CUDA build whose
// backend resolves to cuda), else the world itself (MPI, or the one-process SoloCommunicator).
#include <memory>

#include <string>

#include "comm/communicator.hpp"

namespace cm {

// Collective over the world. The result may be the world itself (not owned): hold it through the pointer.
std::shared_ptr<Communicator> make_job_communicator(const std::string& backend, Communicator& world,
                                                    int local_rank);

}  // namespace cm
