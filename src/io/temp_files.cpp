#include "io/temp_files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

namespace cm {

namespace {

// Fixed storage: the handler may only touch what needs no allocation or lock.
constexpr int kSlots = 8;
constexpr size_t kPathMax = 4096;
char g_paths[kSlots][kPathMax];
std::atomic<bool> g_used[kSlots];
bool g_is_dir[kSlots];

// Everything in the directory `fd` refers to, then the descriptor: raw getdents64 and *at calls only, which
// are async-signal-safe where opendir is not. Deeper than `depth` levels is left (no output nests that far).
void remove_contents(int fd, int depth) {
  struct Entry {
    uint64_t ino;
    int64_t off;
    unsigned short reclen;
    unsigned char type;
    char name[1];
  };
  alignas(8) char buf[4096];
  for (;;) {
    const long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (n <= 0) break;
    bool removed = false;
    for (long at = 0; at < n;) {
      const Entry* e = reinterpret_cast<const Entry*>(buf + at);
      at += e->reclen;
      if (std::strcmp(e->name, ".") == 0 || std::strcmp(e->name, "..") == 0) continue;
      // Some filesystems do not report the type (DT_UNKNOWN): what unlink refuses is taken for a directory.
      if (e->type != DT_DIR && unlinkat(fd, e->name, 0) == 0) {
        removed = true;
      } else if (depth > 0) {
        const int sub = openat(fd, e->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0) remove_contents(sub, depth - 1);
        removed |= unlinkat(fd, e->name, AT_REMOVEDIR) == 0;
      }
    }
    // Entries removed while listing may shift what getdents returns: list again from the start.
    if (removed) lseek(fd, 0, SEEK_SET);
  }
  close(fd);
}

void on_signal(int sig) {
  for (int i = 0; i < kSlots; ++i) {
    if (!g_used[i].load()) continue;
    if (!g_is_dir[i]) {
      unlink(g_paths[i]);
      continue;
    }
    const int fd = open(g_paths[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) remove_contents(fd, 8);
    rmdir(g_paths[i]);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

void add(const std::string& path, bool is_dir) {
  if (path.size() >= kPathMax) return;  // too long to keep: only the destructor cleans it up then
  for (int i = 0; i < kSlots; ++i) {
    if (g_used[i].load()) continue;
    std::memcpy(g_paths[i], path.c_str(), path.size() + 1);
    g_is_dir[i] = is_dir;
    g_used[i].store(true);
    return;
  }
}

void drop(const std::string& path) {
  for (int i = 0; i < kSlots; ++i)
    if (g_used[i].load() && path == g_paths[i]) g_used[i].store(false);
}

}  // namespace

void remove_temp_files_on_signal() {
  static const bool installed = [] {
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) signal(sig, on_signal);
    return true;
  }();
  (void)installed;
}

void register_temp_file(const std::string& path) { add(path, false); }
void unregister_temp_file(const std::string& path) { drop(path); }
void register_temp_dir(const std::string& path) { add(path, true); }
void unregister_temp_dir(const std::string& path) { drop(path); }

}  // namespace cm
