// The content hash (io/content_hash.hpp) against Python's xxhash (tools/reference/content_hash.py wrote
// data/fixtures/io/content_hash.txt), across chunk edges, and computed leaf by leaf while a safetensors file is
// read, in any order, from several threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <thread>

#include "io/content_hash.hpp"
#include "io/safetensors.hpp"
#include "test_support.hpp"

namespace cm {
namespace {

std::string python_hash(const std::string& path) {
  const std::string cmd = "/usr/bin/python3 " + (test::source_dir() / "tools/reference/content_hash.py").string() +
                          " " + path;
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "";
  char buf[256];
  while (fgets(buf, sizeof buf, p)) out += buf;
  pclose(p);
  return out.substr(0, out.find(' '));
}

TEST(ContentHash, FixturesMatchPythonsXxhash) {
  const auto dir = test::fixtures_dir() / "io";
  std::ifstream list(dir / "content_hash.txt");
  ASSERT_TRUE(list) << "data/fixtures/io/content_hash.txt";
  int files = 0;
  for (std::string digest, name; list >> digest >> name; ++files)
    EXPECT_EQ(content_hash_file((dir / name).string()), digest) << name;
  EXPECT_GE(files, 8);
}

TEST(ContentHash, ChunkEdgesAndEmptyFiles) {
  const test::ScratchDir dir;
  for (const size_t size : {size_t{0}, size_t{1}, kHashChunkBytes - 1, kHashChunkBytes, kHashChunkBytes + 1,
                            3 * kHashChunkBytes + 12345}) {
    const std::string path = (dir / ("f" + std::to_string(size))).string();
    std::string bytes(size, '\0');
    for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((i * 31 + 7) & 255);
    std::ofstream(path, std::ios::binary) << bytes;
    EXPECT_EQ(content_hash_file(path), python_hash(path)) << size;
  }
}

TEST(ContentHash, LeavesFromReadsInAnyOrderGiveTheWholeFilesHash) {
  // Tensors across several chunks, read in blocks that do not line up with the chunks.
  const test::ScratchDir dir;
  const std::string path = (dir / "m.safetensors").string();
  std::vector<test::NamedTensor> tensors;
  for (int i = 0; i < 5; ++i) {
    std::vector<float> v(static_cast<size_t>(70000 + 9000 * i));
    for (size_t j = 0; j < v.size(); ++j) v[j] = static_cast<float>((j * 7 + i) % 1000) * 0.001f;
    tensors.push_back({"t" + std::to_string(i), {static_cast<int64_t>(v.size())}, v});
  }
  test::write_safetensors(path, tensors);
  const SafetensorsFile file(path);
  // Two threads read the tensors in reverse order, in blocks; whatever no read completed is hashed after.
  std::vector<std::thread> readers;
  for (int w = 0; w < 2; ++w)
    readers.emplace_back([&, w] {
      for (int i = 4 - w; i >= 0; i -= 2) {
        const int64_t n = static_cast<int64_t>(tensors[i].values.size());
        std::vector<float> out(static_cast<size_t>(n));
        for (int64_t first = 0; first < n; first += 10007)
          file.read_into(tensors[i].name, first, std::min<int64_t>(10007, n - first), out.data() + first);
        EXPECT_EQ(out, tensors[i].values);
      }
    });
  for (auto& r : readers) r.join();
  ChunkDigests& leaves = file.digests();
  uint64_t by_reads = 0;
  std::vector<uint64_t> words(2 * leaves.chunks());
  for (uint64_t c = 0; c < leaves.chunks(); ++c) {
    by_reads += leaves.done(c);
    leaves.hash(c, file.bytes());
    leaves.words(c, &words[2 * c]);
  }
  EXPECT_GE(by_reads, leaves.chunks() - 1);  // only the header's leaf can be left: every tensor was read
  EXPECT_EQ(content_hash_root(words), content_hash_file(path));
  EXPECT_EQ(content_hash_root(words), python_hash(path));
  EXPECT_EQ(file.tensor_at(0), "");
  EXPECT_EQ(file.tensor_at(file.size() - 1), "t4");
}

}  // namespace
}  // namespace cm
