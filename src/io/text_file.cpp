#include "io/text_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "common/error.hpp"
#include "io/temp_files.hpp"

namespace cm {

namespace {

namespace fs = std::filesystem;

[[noreturn]] void cannot_write(const std::string& path, int err) {
  fail(path, std::string("cannot write: ") + std::strerror(err));
}

void remove_temp(const std::string& tmp) {
  ::unlink(tmp.c_str());
  unregister_temp_file(tmp);
}

// Writes `text` to `tmp`, registered with the signal handler before it exists, and fsyncs it. Returns 0 or
// the errno of the failure, after which `tmp` is gone.
int write_temp(const std::string& path, const std::string& tmp, const std::string& text) {
  const fs::path parent = fs::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) fs::create_directories(parent, ec);
  if (ec) return ec.value();
  register_temp_file(tmp);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err = fd < 0 ? errno : 0;
  for (size_t done = 0; err == 0 && done < text.size();) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n >= 0)
      done += static_cast<size_t>(n);
    else if (errno != EINTR)
      err = errno;
  }
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (fd >= 0 && ::close(fd) != 0 && err == 0) err = errno;
  if (err != 0) remove_temp(tmp);
  return err;
}

}  // namespace

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) fail(path, "cannot read");
  return text.str();
}

void write_text_file(const std::string& path, const std::string& text) { write_text_files({{path, text}}); }

void write_text_files(const std::vector<std::pair<std::string, std::string>>& files) {
  const std::string suffix = ".tmp-" + std::to_string(::getpid());
  for (size_t i = 0; i < files.size(); ++i) {
    const int err = write_temp(files[i].first, files[i].first + suffix, files[i].second);
    if (err == 0) continue;
    for (size_t j = 0; j < i; ++j) remove_temp(files[j].first + suffix);
    cannot_write(files[i].first, err);
  }
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string tmp = files[i].first + suffix;
    if (std::rename(tmp.c_str(), files[i].first.c_str()) == 0) {
      unregister_temp_file(tmp);
      continue;
    }
    // Rare once the temporaries exist side by side with their targets; the set is then withdrawn whole.
    const int err = errno;
    for (size_t j = 0; j < i; ++j) ::unlink(files[j].first.c_str());
    for (size_t j = i; j < files.size(); ++j) remove_temp(files[j].first + suffix);
    cannot_write(files[i].first, err);
  }
}

}  // namespace cm
