#pragma once
// The job's communicator: who this process is, the reductions of whole-model statistics (Reducer),
// point-to-point transfers of hidden states along the feature pipeline, and the non-blocking transfers that
// bring each merged tensor to rank 0 as soon as it is merged. MPI implements it on CPUs
// (comm/mpi_communicator.*), NCCL on GPUs; SoloCommunicator is the one-process job (and the unit tests), with
// no MPI at all.
#include <cstddef>
#include <memory>

#include "comm/reducer.hpp"

namespace cm {

// A transfer in flight. Its buffer must stay alive and untouched until it is done.
class Request {
 public:
  virtual ~Request() = default;
  // Whether it has completed, without waiting (and driving the transfer on).
  virtual bool done() = 0;
  virtual void wait() = 0;
};

class Communicator : public Reducer {
 public:
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Blocking transfers of n floats; each send is matched by exactly one recv of the same n.
  virtual void send(const float* data, size_t n, int dest) = 0;
  virtual void recv(float* data, size_t n, int src) = 0;

  // Non-blocking transfers of `bytes` bytes; messages between two ranks arrive in the order they were sent,
  // each matched by exactly one receive of the same size.
  virtual std::unique_ptr<Request> isend(const void* data, size_t bytes, int dest) = 0;
  virtual std::unique_ptr<Request> irecv(void* data, size_t bytes, int src) = 0;

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
  std::unique_ptr<Request> isend(const void*, size_t, int) override;
  std::unique_ptr<Request> irecv(void*, size_t, int) override;
  void barrier() override {}
  [[noreturn]] void abort(int code) override;
};

}  // namespace cm
