#include "job/resume.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "common/error.hpp"
#include "common/fault.hpp"
#include "io/content_hash.hpp"
#include "io/temp_files.hpp"

namespace cm {
namespace {

namespace fs = std::filesystem;

// "path size mtime" of a file, or of each file directly inside a directory.
void describe_path(const std::string& path, std::ostringstream& out) {
  std::error_code ec;
  std::set<std::string> files;
  if (fs::is_directory(path, ec)) {
    for (const auto& e : fs::directory_iterator(path, ec))
      if (e.is_regular_file(ec)) files.insert(e.path().string());
  } else {
    files.insert(path);
  }
  for (const std::string& f : files) {
    struct stat st {};
    if (::stat(f.c_str(), &st) != 0) continue;  // the run itself names a missing input
    out << f << ' ' << st.st_size << ' ' << st.st_mtim.tv_sec << '.' << st.st_mtim.tv_nsec << '\n';
  }
}

void write_all(int fd, const void* data, uint64_t bytes, const std::string& where) {
  const auto* p = static_cast<const unsigned char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::write(fd, p, static_cast<size_t>(std::min<uint64_t>(bytes, uint64_t{1} << 30)));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(where, std::string("cannot write: ") + std::strerror(errno));
    p += n;
    bytes -= static_cast<uint64_t>(n);
  }
}

}  // namespace

std::string job_key(const JobConfig& cfg, const std::string& text) {
  std::ostringstream s;
  s << CATMERGE_VERSION << '\n' << text << '\n';
  describe_path(cfg.base, s);
  for (const ExpertConfig& e : cfg.experts) {
    describe_path(e.path, s);
    if (!e.exemplars_file.empty()) describe_path(e.exemplars_file, s);
    if (!e.fisher.empty()) describe_path(e.fisher, s);
  }
  const std::string described = s.str();
  return digest_of(described.data(), described.size());
}

ResumeStore::ResumeStore(const JobConfig& cfg, Communicator& comm) : dir_(cfg.output_path + ".resume"), comm_(comm) {
  if (comm.rank() == 0) {
    const std::string key = job_key(cfg, cfg.text);
    const std::string key_file = dir_ + "/key.json";
    std::error_code ec;
    bool same = false;
    if (std::ifstream in(key_file); in) {
      const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
      same = j.is_object() && j.value("key", "") == key;
    }
    if (!same) {
      fs::remove_all(dir_, ec);
      fs::create_directories(dir_, ec);
      if (ec) fail(dir_, "cannot create the resume directory: " + ec.message());
      const std::string tmp = key_file + ".tmp-" + std::to_string(::getpid());
      std::ofstream out(tmp);
      out << nlohmann::json{{"key", key}, {"config", cfg.source}}.dump() << "\n";
      out.close();
      if (!out || std::rename(tmp.c_str(), key_file.c_str()) != 0) fail(dir_, "cannot write key.json");
    }
  }
  comm.barrier();
}

std::string ResumeStore::file_of(int t) const { return dir_ + "/t" + std::to_string(t) + ".bin"; }

bool ResumeStore::load(int t, uint64_t bytes, std::vector<unsigned char>& out) {
  const std::string path = file_of(t);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  bool ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) == bytes;
  if (ok) {
    out.resize(static_cast<size_t>(bytes));
    uint64_t got = 0;
    while (ok && got < bytes) {
      const ssize_t n = ::pread(fd, out.data() + got, static_cast<size_t>(bytes - got), static_cast<off_t>(got));
      if (n < 0 && errno == EINTR) continue;
      ok = n > 0;
      if (ok) got += static_cast<uint64_t>(n);
    }
  }
  ::close(fd);
  if (ok) ++reused_;
  return ok;
}

void ResumeStore::save(int t, const void* data, uint64_t bytes) {
  const std::string path = file_of(t);
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  register_temp_file(tmp);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(tmp, std::string("cannot create: ") + std::strerror(errno));
  try {
    // No fsync: what a killed process wrote stays in the kernel's hands, and preemption kills processes, not
    // nodes; a file the rename shows is whole. (An fsync per tensor cost the zoo's CAT merge 40%.)
    write_all(fd, data, bytes, tmp);
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    unregister_temp_file(tmp);
    throw;
  }
  ::close(fd);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    unregister_temp_file(tmp);
    fail(path, std::string("cannot write (rename failed): ") + std::strerror(errno));
  }
  unregister_temp_file(tmp);
  fault_point("tensor-saved");
}

void ResumeStore::discard() {
  // Other ranks may still be saving into it until the abort reaches them: a file made while the folder is being
  // emptied stops its removal, so remove again. Once it is gone no rank can save (nothing creates it again).
  for (int attempt = 0; attempt < 10; ++attempt) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
    if (!fs::exists(dir_, ec)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void ResumeStore::finish() {
  comm_.barrier();
  if (comm_.rank() == 0) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

}  // namespace cm
