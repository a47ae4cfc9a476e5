#include "comm/nccl_communicator.hpp"

#include <algorithm>
#include <cstdlib>
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

// Sizes first (an all-gather of one count per rank), then one group in which the root receives every other
// rank's contribution at its place in the result while each other rank sends.
void NcclCommunicator::gather(const float* data, size_t n, int root, std::vector<float>* out,
                              std::vector<size_t>* counts) {
  std::vector<uint64_t> sizes(static_cast<size_t>(size_));
  {
    const uint64_t mine = n;
    unsigned char* d = buf_.get((static_cast<size_t>(size_) + 1) * sizeof mine);
    uint64_t* all = reinterpret_cast<uint64_t*>(d);
    CUDA_CHECK(cudaMemcpyAsync(all + size_, &mine, sizeof mine, cudaMemcpyHostToDevice, stream_));
    NCCL_CHECK(ncclAllGather(all + size_, all, 1, ncclUint64, comm_, stream_));
    CUDA_CHECK(cudaMemcpyAsync(sizes.data(), all, sizes.size() * sizeof mine, cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  out->clear();
  counts->clear();
  std::vector<size_t> at(static_cast<size_t>(size_) + 1, 0);
  for (int r = 0; r < size_; ++r) at[r + 1] = at[r] + sizes[r];
  float* d = reinterpret_cast<float*>(buf_.get(std::max<size_t>(rank_ == root ? at[size_] : n, 1) * sizeof(float)));
  if (rank_ == root) {
    NCCL_CHECK(ncclGroupStart());
    for (int r = 0; r < size_; ++r)
      if (r != root && sizes[r] > 0) NCCL_CHECK(ncclRecv(d + at[r], sizes[r], ncclFloat32, r, comm_, stream_));
    NCCL_CHECK(ncclGroupEnd());
    out->resize(at[size_]);
    counts->assign(sizes.begin(), sizes.end());
    CUDA_CHECK(cudaMemcpyAsync(out->data(), d, at[size_] * sizeof(float), cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    std::copy(data, data + n, out->begin() + static_cast<ptrdiff_t>(at[root]));
  } else if (n > 0) {
    CUDA_CHECK(cudaMemcpyAsync(d, data, n * sizeof(float), cudaMemcpyHostToDevice, stream_));
    NCCL_CHECK(ncclSend(d, n, ncclFloat32, root, comm_, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
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
