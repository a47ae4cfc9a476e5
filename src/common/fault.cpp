#include "common/fault.hpp"

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>

namespace cm {
namespace {

struct Fault {
  std::string point;
  long after = 0;
  int signal = SIGKILL;
  long calls = 0;
};

Fault* parse() {
  const char* spec = std::getenv("CATMERGE_FAULT");
  if (!spec || !*spec) return nullptr;
  static Fault f;
  const std::string s(spec);
  const size_t a = s.find(':');
  if (a == std::string::npos) return nullptr;
  const size_t b = s.find(':', a + 1);
  f.point = s.substr(0, a);
  f.after = std::strtol(s.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1).c_str(), nullptr, 10);
  if (b != std::string::npos) {
    const std::string sig = s.substr(b + 1);
    f.signal = sig == "TERM" ? SIGTERM : sig == "INT" ? SIGINT : sig == "USR1" ? SIGUSR1 : SIGKILL;
  }
  return &f;
}

}  // namespace

void fault_point(const char* point) {
  static Fault* fault = parse();
  if (!fault || fault->point != point) return;
  if (++fault->calls == fault->after) std::raise(fault->signal);
}

}  // namespace cm
