#include <mpi.h>

#include "common/error.hpp"
#include "cuda_check.hpp"

namespace cm {

// The rank is MPI's when a job runs under MPI (the format of comm/mpi_communicator.cpp's mpi_failed), else 0.
void device_failed(const char* call, const std::string& what, const char* file, int line) {
  int rank = 0, started = 0, finished = 0;
  MPI_Initialized(&started);
  MPI_Finalized(&finished);
  if (started && !finished) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  throw Error(std::string(file) + ":" + std::to_string(line) + ": rank " + std::to_string(rank) + ": " + call +
              " failed: " + what);
}

}  // namespace cm
