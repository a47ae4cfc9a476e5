#pragma once
// A whole file mapped read-only (MAP_PRIVATE). The descriptor is closed right after mapping, so any
// number of shards can stay mapped without holding file descriptors.
#include <cstddef>
#include <cstdint>
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
  // Hints for the pages of [offset, offset + len): read them ahead (they are needed soon), or drop them from
  // this process (its resident memory); the page cache keeps them either way, so a later read finds them.
  void will_need(uint64_t offset, uint64_t len) const;
  void release(uint64_t offset, uint64_t len) const;

 private:
  const unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace cm
