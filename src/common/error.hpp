#pragma once
// Errors. Every error a user can cause is a cm::Error whose message is one line: "<where>: <problem>",
// where <where> is the file (or config key) at fault. CM_ASSERT guards invariants that input cannot
// break and carries the source location, like nccl-tests' check macros.
#include <stdexcept>
#include <string>

namespace cm {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void fail(const std::string& where, const std::string& problem) {
  throw Error(where + ": " + problem);
}

[[noreturn]] void assert_failed(const char* expr, const char* file, int line);

}  // namespace cm

#define CM_ASSERT(cond)                                               \
  do {                                                                \
    if (!(cond)) ::cm::assert_failed(#cond, __FILE__, __LINE__);      \
  } while (0)
