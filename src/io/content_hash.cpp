#include "io/content_hash.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/error.hpp"

namespace cm {
namespace {

std::string hex(const XXH128_canonical_t& c) {
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  for (unsigned char b : c.digest) {
    s += kHex[b >> 4];
    s += kHex[b & 15];
  }
  return s;
}

}  // namespace

ChunkDigests::ChunkDigests(uint64_t file_size)
    : size_(file_size),
      count_((file_size + kHashChunkBytes - 1) / kHashChunkBytes),
      state_(new std::atomic<uint8_t>[count_ > 0 ? count_ : 1]),
      words_(static_cast<size_t>(2 * count_), 0) {
  for (uint64_t c = 0; c < count_; ++c) state_[c].store(kUnhashed, std::memory_order_relaxed);
}

uint64_t ChunkDigests::chunk_end(uint64_t c) const { return std::min(size_, (c + 1) * kHashChunkBytes); }

void ChunkDigests::hash(uint64_t c, const unsigned char* data) {
  uint8_t expected = kUnhashed;
  if (!state_[c].compare_exchange_strong(expected, kHashing, std::memory_order_acq_rel)) return;
  const uint64_t begin = c * kHashChunkBytes;
  const XXH128_hash_t h = XXH3_128bits(data + begin, static_cast<size_t>(chunk_end(c) - begin));
  words_[2 * c] = h.high64;
  words_[2 * c + 1] = h.low64;
  state_[c].store(kHashed, std::memory_order_release);
}

void ChunkDigests::hash_ending_in(uint64_t begin, uint64_t end, const unsigned char* data) {
  if (end <= begin || count_ == 0) return;
  // Chunk c's last byte is chunk_end(c) - 1: the chunks from the one holding `begin` to the last whose end is
  // within `end`.
  for (uint64_t c = begin / kHashChunkBytes; c < count_ && chunk_end(c) <= end; ++c)
    if (chunk_end(c) > begin) hash(c, data);
}

void ChunkDigests::words(uint64_t c, uint64_t* two) const {
  const bool ready = done(c);
  two[0] = ready ? words_[2 * c] : 0;
  two[1] = ready ? words_[2 * c + 1] : 0;
}

std::string content_hash_root(const std::vector<uint64_t>& words) {
  std::vector<XXH128_canonical_t> leaves(words.size() / 2);
  for (size_t c = 0; c < leaves.size(); ++c) XXH128_canonicalFromHash(&leaves[c], XXH128_hash_t{words[2 * c + 1], words[2 * c]});
  XXH128_canonical_t root;
  XXH128_canonicalFromHash(&root, XXH3_128bits(leaves.data(), leaves.size() * sizeof(XXH128_canonical_t)));
  return hex(root);
}

std::string digest_hex(uint64_t high, uint64_t low) {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, XXH128_hash_t{low, high});
  return hex(c);
}

std::string digest_of(const void* data, size_t n) {
  const XXH128_hash_t h = XXH3_128bits(data, n);
  return digest_hex(h.high64, h.low64);
}

std::string content_hash_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, std::string("cannot open for hashing: ") + std::strerror(errno));
  std::vector<unsigned char> chunk(kHashChunkBytes);
  std::vector<uint64_t> words;
  for (;;) {
    size_t got = 0;
    while (got < chunk.size()) {
      const ssize_t r = ::pread(fd, chunk.data() + got, chunk.size() - got, static_cast<off_t>(words.size() / 2 * kHashChunkBytes + got));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        const int e = errno;
        ::close(fd);
        fail(path, std::string("read error while hashing: ") + std::strerror(e));
      }
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    if (got == 0) break;
    const XXH128_hash_t h = XXH3_128bits(chunk.data(), got);
    words.push_back(h.high64);
    words.push_back(h.low64);
    if (got < chunk.size()) break;
  }
  ::close(fd);
  return content_hash_root(words);
}

}  // namespace cm
