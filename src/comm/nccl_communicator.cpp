#include "comm/nccl_communicator.hpp"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>

#include "backend/cuda/cuda_backend.hpp"
#include "comm/mpi_check.hpp"
#include "common/error.hpp"
#include "cuda_check.hpp"

#define NCCL_CHECK(call)                                                                  \
  do {                                                                                    \
    const ncclResult_t nccl_check_rc_ = (call);                                           \
    if (nccl_check_rc_ != ncclSuccess)                                                    \
      ::cm::device_failed(#call, ncclGetErrorString(nccl_check_rc_), __FILE__, __LINE__); \
  } while (0)

namespace cm {

NcclCommunicator::NcclCommunicator(MPI_Comm comm, int local_rank) : mpi_(comm) {
  MPI_CHECK(MPI_Comm_rank(mpi_, &rank_));
  MPI_CHECK(MPI_Comm_size(mpi_, &size_));
  const int devices = cuda_device_count();
  if (devices == 0) fail("nccl", "no CUDA device is visible to rank " + std::to_string(rank_));
  CUDA_CHECK(cudaSetDevice(local_rank % devices));
  ncclUniqueId id;
  if (rank_ == 0) NCCL_CHECK(ncclGetUniqueId(&id));
  MPI_CHECK(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, mpi_));
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  NCCL_CHECK(ncclCommInitRank(&comm_, size_, id, rank_));
}

// No checks on the way down: a destructor must not throw.
NcclCommunicator::~NcclCommunicator() {
  if (comm_) ncclCommDestroy(comm_);
  if (stream_) cudaStreamDestroy(stream_);
}

// In place in one staging buffer: upload, reduce, download.
void NcclCommunicator::all_reduce(void* values, size_t n, size_t bytes, ncclDataType_t type, ncclRedOp_t op) {
  if (n == 0) return;
  unsigned char* d = buf_.get(bytes);
  CUDA_CHECK(cudaMemcpyAsync(d, values, bytes, cudaMemcpyHostToDevice, stream_));
  NCCL_CHECK(ncclAllReduce(d, d, n, type, op, comm_, stream_));
  CUDA_CHECK(cudaMemcpyAsync(values, d, bytes, cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void NcclCommunicator::sum(uint64_t* v, size_t n) { all_reduce(v, n, n * sizeof *v, ncclUint64, ncclSum); }
void NcclCommunicator::sum(double* v, size_t n) { all_reduce(v, n, n * sizeof *v, ncclFloat64, ncclSum); }
void NcclCommunicator::max(double* v, size_t n) { all_reduce(v, n, n * sizeof *v, ncclFloat64, ncclMax); }
void NcclCommunicator::min(double* v, size_t n) { all_reduce(v, n, n * sizeof *v, ncclFloat64, ncclMin); }

// Both sides know n, so a zero-length transfer is skipped on both.
void NcclCommunicator::send(const float* data, size_t n, int dest) {
  if (n == 0) return;
  unsigned char* d = buf_.get(n * sizeof *data);
  CUDA_CHECK(cudaMemcpyAsync(d, data, n * sizeof *data, cudaMemcpyHostToDevice, stream_));
  NCCL_CHECK(ncclSend(d, n, ncclFloat32, dest, comm_, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void NcclCommunicator::recv(float* data, size_t n, int src) {
  if (n == 0) return;
  unsigned char* d = buf_.get(n * sizeof *data);
  NCCL_CHECK(ncclRecv(d, n, ncclFloat32, src, comm_, stream_));
  CUDA_CHECK(cudaMemcpyAsync(data, d, n * sizeof *data, cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

namespace {

// A transfer on the communicator's stream, complete when the event recorded after it has fired. A receive
// copies its device buffer to the host once found complete.
class NcclRequest : public Request {
 public:
  NcclRequest(cudaStream_t stream, size_t bytes, void* host_out)
      : stream_(stream), bytes_(bytes), host_out_(host_out) {
    CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming));
  }
  ~NcclRequest() override { cudaEventDestroy(event_); }  // no check: a destructor must not throw
  unsigned char* buffer() { return buf_.get(std::max<size_t>(bytes_, 1)); }
  void recorded() { CUDA_CHECK(cudaEventRecord(event_, stream_)); }
  bool done() override {
    if (finished_) return true;
    const cudaError_t rc = cudaEventQuery(event_);
    if (rc == cudaErrorNotReady) return false;
    CUDA_CHECK(rc);
    finish();
    return true;
  }
  void wait() override {
    if (finished_) return;
    CUDA_CHECK(cudaEventSynchronize(event_));
    finish();
  }

 private:
  void finish() {
    if (host_out_ && bytes_ > 0) CUDA_CHECK(cudaMemcpy(host_out_, buf_.data(), bytes_, cudaMemcpyDeviceToHost));
    finished_ = true;
  }

  cudaStream_t stream_;
  size_t bytes_;
  void* host_out_;
  cudaEvent_t event_ = nullptr;
  DeviceBuffer<unsigned char> buf_;
  bool finished_ = false;
};

}  // namespace

std::unique_ptr<Request> NcclCommunicator::isend(const void* data, size_t bytes, int dest) {
  auto r = std::make_unique<NcclRequest>(stream_, bytes, nullptr);
  if (bytes > 0) {
    unsigned char* d = r->buffer();
    CUDA_CHECK(cudaMemcpyAsync(d, data, bytes, cudaMemcpyHostToDevice, stream_));
    NCCL_CHECK(ncclSend(d, bytes, ncclUint8, dest, comm_, stream_));
  }
  r->recorded();
  return r;
}

std::unique_ptr<Request> NcclCommunicator::irecv(void* data, size_t bytes, int src) {
  auto r = std::make_unique<NcclRequest>(stream_, bytes, data);
  if (bytes > 0) NCCL_CHECK(ncclRecv(r->buffer(), bytes, ncclUint8, src, comm_, stream_));
  r->recorded();
  return r;
}

// An all-reduce of one word that every rank must join, completed on every GPU.
void NcclCommunicator::barrier() {
  uint64_t token = 0;
  sum(&token, 1);
}

void NcclCommunicator::abort(int code) {
  ncclCommAbort(comm_);
  MPI_Abort(mpi_, code);
  std::exit(code);  // MPI_Abort does not return in practice; this keeps [[noreturn]] honest
}

}  // namespace cm
