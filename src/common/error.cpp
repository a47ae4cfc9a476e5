#include "common/error.hpp"

namespace cm {

void assert_failed(const char* expr, const char* file, int line) {
  throw Error(std::string(file) + ":" + std::to_string(line) + ": internal error: " + expr);
}

}  // namespace cm
