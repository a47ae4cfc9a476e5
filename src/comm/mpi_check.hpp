#pragma once
// MPI_CHECK: an MPI call that fails becomes a cm::Error carrying the call, file, line and rank
// (MPI_ERRORS_RETURN is set on the communicators we use, so failures reach us instead of aborting).
#include <mpi.h>

#include <string>

#include "common/error.hpp"

namespace cm {

[[noreturn]] void mpi_failed(int code, const char* call, const char* file, int line);

}  // namespace cm

#define MPI_CHECK(call)                                                   \
  do {                                                                    \
    const int mpi_check_rc_ = (call);                                     \
    if (mpi_check_rc_ != MPI_SUCCESS) ::cm::mpi_failed(mpi_check_rc_, #call, __FILE__, __LINE__); \
  } while (0)
