#pragma once
// The Communicator over NCCL, for jobs whose ranks each drive a GPU: reductions and point-to-point transfers
// (the pipeline's hidden states, the merged tensors on their way to rank 0) run on the GPUs' interconnect. MPI only bootstraps it (rank 0 makes the NCCL unique id, MPI
// broadcasts it) and ends the job on abort. Host pointers in and out, staged through device buffers.
#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>

#include "backend/cuda/device_buffer.hpp"
#include "comm/communicator.hpp"

namespace cm {

class NcclCommunicator : public Communicator {
 public:
  // Collective over every rank of comm; the rank's GPU is local_rank % device count (as its backend's).
  NcclCommunicator(MPI_Comm comm, int local_rank);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  void sum(uint64_t* values, size_t n) override;
  void sum(double* values, size_t n) override;
  void max(double* values, size_t n) override;
  void min(double* values, size_t n) override;
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void send(const float* data, size_t n, int dest) override;
  void recv(float* data, size_t n, int src) override;
  // Staged through a device buffer of the request's own; a receive reaches the host when it is found done.
  std::unique_ptr<Request> isend(const void* data, size_t bytes, int dest) override;
  std::unique_ptr<Request> irecv(void* data, size_t bytes, int src) override;
  void barrier() override;
  [[noreturn]] void abort(int code) override;

 private:
  void all_reduce(void* values, size_t n, size_t bytes, ncclDataType_t type, ncclRedOp_t op);

  MPI_Comm mpi_;
  int rank_ = 0, size_ = 1;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  DeviceBuffer<unsigned char> buf_;
};

}  // namespace cm
