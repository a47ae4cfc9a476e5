// The NCCL communicator with one rank (MPI from the GPU tests' main): reductions keep the values, the barrier
// returns. Point-to-point transfers need a second GPU.
#include <mpi.h>

#include "comm/nccl_communicator.hpp"
#include "gpu_testing.hpp"

namespace cm {
namespace {

class Nccl : public testing::GpuTest {};

TEST_F(Nccl, OneRank) {
  int ranks = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  if (ranks != 1) GTEST_SKIP() << "run as a single process";
  NcclCommunicator comm(MPI_COMM_WORLD, 0);
  EXPECT_EQ(comm.rank(), 0);
  EXPECT_EQ(comm.size(), 1);
  std::vector<uint64_t> u = {1, 2, 3, 1ull << 60};
  const std::vector<uint64_t> u0 = u;
  comm.sum(u.data(), u.size());
  EXPECT_EQ(u, u0);
  std::vector<double> d = {-1.5, 0.25, 1e300};
  const std::vector<double> d0 = d;
  comm.sum(d.data(), d.size());
  comm.max(d.data(), d.size());
  comm.min(d.data(), d.size());
  EXPECT_EQ(d, d0);
  comm.barrier();
}

}  // namespace
}  // namespace cm
