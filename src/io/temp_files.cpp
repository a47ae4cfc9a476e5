#include "io/temp_files.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

namespace cm {

namespace {

// Fixed storage: the handler may only touch what needs no allocation or lock.
constexpr int kSlots = 4;
constexpr size_t kPathMax = 4096;
char g_paths[kSlots][kPathMax];
std::atomic<bool> g_used[kSlots];

void on_signal(int sig) {
  for (int i = 0; i < kSlots; ++i)
    if (g_used[i].load()) unlink(g_paths[i]);
  signal(sig, SIG_DFL);
  raise(sig);
}

}  // namespace

void remove_temp_files_on_signal() {
  static const bool installed = [] {
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) signal(sig, on_signal);
    return true;
  }();
  (void)installed;
}

void register_temp_file(const std::string& path) {
  if (path.size() >= kPathMax) return;  // too long to keep: only the destructor cleans it up then
  for (int i = 0; i < kSlots; ++i) {
    if (g_used[i].load()) continue;
    std::memcpy(g_paths[i], path.c_str(), path.size() + 1);
    g_used[i].store(true);
    return;
  }
}

void unregister_temp_file(const std::string& path) {
  for (int i = 0; i < kSlots; ++i)
    if (g_used[i].load() && path == g_paths[i]) g_used[i].store(false);
}

}  // namespace cm
