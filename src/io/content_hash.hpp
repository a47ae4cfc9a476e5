#pragma once
// The content hash catmerge records for every input file (README "Output format"): a tree of XXH3-128 (seed 0)
// digests. The leaves are the digests of the file's consecutive 256 KiB chunks (the last one shorter), the root
// the XXH3-128 of their canonical 16-byte big-endian forms laid end to end:
//   root = xxh3_128(b"".join(xxh3_128(chunk).digest() for chunk in chunks))   (Python's xxhash package)
// A leaf needs only its own bytes, so every process hashes the chunks it reads, in any order and on any
// thread, while it reads them: the hash costs no pass of its own.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace cm {

constexpr uint64_t kHashChunkBytes = 256 * 1024;
constexpr const char* kContentHashName = "xxh3_128_tree_256KiB";

// The leaves of one file, each computed at most once; any thread may add leaves.
class ChunkDigests {
 public:
  explicit ChunkDigests(uint64_t file_size);
  uint64_t chunks() const { return count_; }
  uint64_t chunk_end(uint64_t c) const;  // one past the chunk's last byte
  // Leaf c from the file's bytes (data: byte 0 of the file), unless it is already done or being done.
  void hash(uint64_t c, const unsigned char* data);
  // Every leaf whose last byte lies in [begin, end): what a reader of those bytes completes.
  void hash_ending_in(uint64_t begin, uint64_t end, const unsigned char* data);
  bool done(uint64_t c) const { return state_[c].load(std::memory_order_acquire) == kHashed; }
  // Leaf c as two words (high, low); both 0 when not done.
  void words(uint64_t c, uint64_t* two) const;

 private:
  // A leaf goes unhashed -> hashing (the one thread that won the exchange) -> hashed.
  static constexpr uint8_t kUnhashed = 0, kHashing = 1, kHashed = 2;
  uint64_t size_, count_;
  std::unique_ptr<std::atomic<uint8_t>[]> state_;
  std::vector<uint64_t> words_;  // 2 per leaf
};

// The root from every leaf's words (2 per leaf, high first), as 32 lowercase hex digits.
std::string content_hash_root(const std::vector<uint64_t>& words);

// The whole content hash of a file read here (chunk by chunk, pread), for files no reader hashes on the way.
std::string content_hash_file(const std::string& path);

// An XXH3-128 digest (high and low words) as 32 lowercase hex digits, big-endian (its canonical form); and the
// digest of n bytes so written: the keys of the feature cache and of a job's saved work.
std::string digest_hex(uint64_t high, uint64_t low);
std::string digest_of(const void* data, size_t n);

}  // namespace cm
