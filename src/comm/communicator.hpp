#pragma once
// The job's communicator: who this process is, the reductions of whole-model statistics (Reducer),
// point-to-point transfers of hidden states along the feature pipeline, and the gather that brings
// each round of merged tensors to rank 0. MPI implements it on CPUs (comm/mpi_communicator.*), NCCL on
// GPUs; SoloCommunicator is the one-process job (and the unit tests), with no MPI at all.
#include <cstddef>
#include <vector>

#include "comm/reducer.hpp"

namespace cm {

class Communicator : public Reducer {
 public:
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Blocking transfers of n floats; each send is matched by exactly one recv of the same n.
  virtual void send(const float* data, size_t n, int dest) = 0;
  virtual void recv(float* data, size_t n, int src) = 0;

  // Collective: every rank contributes n floats (n may differ, may be 0). On `root`, out receives all
  // contributions concatenated in rank order and counts[r] the size of rank r's; elsewhere both are left empty.
  virtual void gather(const float* data, size_t n, int root, std::vector<float>* out, std::vector<size_t>* counts) = 0;

  // Collective: waits for every rank.
  virtual void barrier() = 0;

  // Failure path: ends every process of the job promptly with `code`. Does not return.
  [[noreturn]] virtual void abort(int code) = 0;
};

// A job of one process.
class SoloCommunicator : public Communicator {
 public:
  void sum(uint64_t*, size_t) override {}
  void sum(double*, size_t) override {}
  void max(double*, size_t) override {}
  void min(double*, size_t) override {}
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void send(const float*, size_t, int) override;
  void recv(float*, size_t, int) override;
  void gather(const float* data, size_t n, int root, std::vector<float>* out, std::vector<size_t>* counts) override;
  void barrier() override {}
  [[noreturn]] void abort(int code) override;
};

}  // namespace cm
