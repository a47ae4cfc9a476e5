#include "comm/mpi_communicator.hpp"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <memory>
#include <vector>

#include "comm/mpi_check.hpp"

namespace cm {

void mpi_failed(int code, const char* call, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  int rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  throw Error(std::string(file) + ":" + std::to_string(line) + ": rank " + std::to_string(rank) + ": " + call +
              " failed: " + std::string(text, static_cast<size_t>(len)));
}

namespace {

// MPI counts are int; transfers larger than that go in pieces.
constexpr size_t kMaxChunk = static_cast<size_t>(INT_MAX) / 2;

template <class T>
void allreduce(MPI_Comm comm, T* values, size_t n, MPI_Datatype type, MPI_Op op) {
  for (size_t done = 0; done < n; done += kMaxChunk) {
    const int count = static_cast<int>(std::min(kMaxChunk, n - done));
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, values + done, count, type, op, comm));
  }
}

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm) : comm_(comm) {
  MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  MPI_CHECK(MPI_Comm_size(comm_, &size_));
}

void MpiCommunicator::sum(uint64_t* v, size_t n) { allreduce(comm_, v, n, MPI_UINT64_T, MPI_SUM); }
void MpiCommunicator::sum(double* v, size_t n) { allreduce(comm_, v, n, MPI_DOUBLE, MPI_SUM); }
void MpiCommunicator::max(double* v, size_t n) { allreduce(comm_, v, n, MPI_DOUBLE, MPI_MAX); }
void MpiCommunicator::min(double* v, size_t n) { allreduce(comm_, v, n, MPI_DOUBLE, MPI_MIN); }

// One message per chunk; a zero-length transfer is one empty message, so sends and receives always pair.
void MpiCommunicator::send(const float* data, size_t n, int dest) {
  size_t done = 0;
  do {
    const int count = static_cast<int>(std::min(kMaxChunk, n - done));
    MPI_CHECK(MPI_Send(data + done, count, MPI_FLOAT, dest, 0, comm_));
    done += static_cast<size_t>(count);
  } while (done < n);
}

void MpiCommunicator::recv(float* data, size_t n, int src) {
  size_t done = 0;
  do {
    const int count = static_cast<int>(std::min(kMaxChunk, n - done));
    MPI_CHECK(MPI_Recv(data + done, count, MPI_FLOAT, src, 0, comm_, MPI_STATUS_IGNORE));
    done += static_cast<size_t>(count);
  } while (done < n);
}

namespace {

// Tag of the merged tensors' transfers, apart from the pipeline's (tag 0).
constexpr int kTensorTag = 1;

// One MPI request per piece of at most kMaxChunk bytes; an empty transfer is one empty message.
class MpiRequest : public Request {
 public:
  template <class Start>
  MpiRequest(size_t bytes, Start start) {
    size_t done = 0;
    do {
      const int count = static_cast<int>(std::min(kMaxChunk, bytes - done));
      requests_.emplace_back();
      start(done, count, &requests_.back());
      done += static_cast<size_t>(count);
    } while (done < bytes);
  }
  bool done() override {
    int flag = 0;
    MPI_CHECK(MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &flag, MPI_STATUSES_IGNORE));
    return flag != 0;
  }
  void wait() override {
    MPI_CHECK(MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE));
  }

 private:
  std::vector<MPI_Request> requests_;
};

}  // namespace

std::unique_ptr<Request> MpiCommunicator::isend(const void* data, size_t bytes, int dest) {
  const char* p = static_cast<const char*>(data);
  return std::make_unique<MpiRequest>(bytes, [&](size_t at, int count, MPI_Request* r) {
    MPI_CHECK(MPI_Isend(p + at, count, MPI_BYTE, dest, kTensorTag, comm_, r));
  });
}

std::unique_ptr<Request> MpiCommunicator::irecv(void* data, size_t bytes, int src) {
  char* p = static_cast<char*>(data);
  return std::make_unique<MpiRequest>(bytes, [&](size_t at, int count, MPI_Request* r) {
    MPI_CHECK(MPI_Irecv(p + at, count, MPI_BYTE, src, kTensorTag, comm_, r));
  });
}

void MpiCommunicator::barrier() { MPI_CHECK(MPI_Barrier(comm_)); }

void MpiCommunicator::abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);  // MPI_Abort does not return in practice; this keeps [[noreturn]] honest
}

}  // namespace cm
