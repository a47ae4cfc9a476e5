#include "comm/mpi_communicator.hpp"

#include <algorithm>
#include <climits>
#include <cstdlib>

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

void MpiCommunicator::gather(const float* data, size_t n, int root, std::vector<float>* out,
                             std::vector<size_t>* counts) {
  // Sizes first, so the root can place every contribution; then the payloads, rank by rank.
  const uint64_t mine = n;
  std::vector<uint64_t> sizes(rank_ == root ? size_ : 0);
  MPI_CHECK(MPI_Gather(&mine, 1, MPI_UINT64_T, sizes.data(), 1, MPI_UINT64_T, root, comm_));
  out->clear();
  counts->clear();
  if (rank_ != root) {
    if (n > 0) send(data, n, root);
    return;
  }
  size_t total = 0;
  for (uint64_t s : sizes) total += s;
  out->resize(total);
  counts->assign(sizes.begin(), sizes.end());
  size_t at = 0;
  for (int r = 0; r < size_; ++r) {
    if (r == root)
      std::copy(data, data + n, out->begin() + static_cast<ptrdiff_t>(at));
    else if (sizes[r] > 0)
      recv(out->data() + at, sizes[r], r);
    at += sizes[r];
  }
}

void MpiCommunicator::barrier() { MPI_CHECK(MPI_Barrier(comm_)); }

void MpiCommunicator::abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);  // MPI_Abort does not return in practice; this keeps [[noreturn]] honest
}

}  // namespace cm
