#pragma once
// The Communicator over MPI: the CPU twin of the NCCL communicator, and what a CPU-only job uses.
#include <mpi.h>

#include "comm/communicator.hpp"

namespace cm {

class MpiCommunicator : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm comm);
  void sum(uint64_t* values, size_t n) override;
  void sum(double* values, size_t n) override;
  void max(double* values, size_t n) override;
  void min(double* values, size_t n) override;
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void send(const float* data, size_t n, int dest) override;
  void recv(float* data, size_t n, int src) override;
  std::unique_ptr<Request> isend(const void* data, size_t bytes, int dest) override;
  std::unique_ptr<Request> irecv(void* data, size_t bytes, int src) override;
  void barrier() override;
  [[noreturn]] void abort(int code) override;

 private:
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
};

}  // namespace cm
