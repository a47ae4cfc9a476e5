#include <cstdlib>

#include "comm/communicator.hpp"
#include "common/error.hpp"

namespace cm {

// A one-process job has no peer: the pipeline and gather never address another rank.
void SoloCommunicator::send(const float*, size_t, int) { CM_ASSERT(!"a one-process job has no peer"); }
void SoloCommunicator::recv(float*, size_t, int) { CM_ASSERT(!"a one-process job has no peer"); }

void SoloCommunicator::gather(const float* data, size_t n, int root, std::vector<float>* out,
                              std::vector<size_t>* counts) {
  CM_ASSERT(root == 0);
  out->assign(data, data + n);
  counts->assign(1, n);
}

void SoloCommunicator::abort(int code) { std::exit(code); }

}  // namespace cm
