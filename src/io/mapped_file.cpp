#include "io/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/error.hpp"

namespace cm {

MappedFile::MappedFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    fail(path, errno == ENOENT ? "no such file or directory" : std::string("cannot open: ") + strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const std::string why = S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file";
    ::close(fd);
    fail(path, why);
  }
  size_ = static_cast<size_t>(st.st_size);
  // mmap rejects a zero length; an empty file simply has no data.
  void* p = size_ ? ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0) : nullptr;
  const int map_errno = errno;
  ::close(fd);
  if (p == MAP_FAILED) fail(path, std::string("cannot map: ") + strerror(map_errno));
  data_ = static_cast<const unsigned char*>(p);
}

namespace {

// The whole pages that [offset, offset + len) touches, clipped to the mapping.
void advise(const unsigned char* data, size_t size, uint64_t offset, uint64_t len, int advice) {
  if (!data || len == 0 || offset >= size) return;
  static const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t first = offset / page * page, end = std::min<uint64_t>(size, offset + len);
  ::madvise(const_cast<unsigned char*>(data) + first, static_cast<size_t>(end - first), advice);  // a hint only
}

}  // namespace

void MappedFile::will_need(uint64_t offset, uint64_t len) const { advise(data_, size_, offset, len, MADV_WILLNEED); }
void MappedFile::release(uint64_t offset, uint64_t len) const { advise(data_, size_, offset, len, MADV_DONTNEED); }

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<unsigned char*>(data_), size_);
}

}  // namespace cm
