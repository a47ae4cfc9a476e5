#include <cstdlib>

#include "comm/communicator.hpp"
#include "common/error.hpp"

namespace cm {

// A one-process job has no peer: the pipeline and the merged tensors never address another rank.
void SoloCommunicator::send(const float*, size_t, int) { CM_ASSERT(!"a one-process job has no peer"); }
void SoloCommunicator::recv(float*, size_t, int) { CM_ASSERT(!"a one-process job has no peer"); }
std::unique_ptr<Request> SoloCommunicator::isend(const void*, size_t, int) {
  CM_ASSERT(!"a one-process job has no peer");
  return nullptr;
}
std::unique_ptr<Request> SoloCommunicator::irecv(void*, size_t, int) {
  CM_ASSERT(!"a one-process job has no peer");
  return nullptr;
}

void SoloCommunicator::abort(int code) { std::exit(code); }

}  // namespace cm
