#pragma once
// A whole file mapped read-only (MAP_PRIVATE). The descriptor is closed right after mapping, so any
// number of shards can stay mapped without holding file descriptors.
#include <cstddef>
#include <string>

namespace cm {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // cm::Error naming `path` if it cannot be opened or mapped
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const unsigned char* data() const { return data_; }  // nullptr for an empty file
  size_t size() const { return size_; }

 private:
  const unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace cm
