// The NCCL communicator with one rank (MPI from the GPU tests' main): reductions keep the values, the gather
// returns the rank's own contribution, the barrier returns. Point-to-point transfers need a second GPU.
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
  const std::vector<float> mine = {1.0f, 2.0f, 3.0f};
  std::vector<float> all;
  std::vector<size_t> counts;
  comm.gather(mine.data(), mine.size(), 0, &all, &counts);
  EXPECT_EQ(all, mine);
  EXPECT_EQ(counts, std::vector<size_t>{3});
  comm.gather(nullptr, 0, 0, &all, &counts);
  EXPECT_TRUE(all.empty());
  EXPECT_EQ(counts, std::vector<size_t>{0});
  comm.barrier();
}

}  // namespace
}  // namespace cm
