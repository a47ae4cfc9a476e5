// sha256_file against published test vectors, a multi-block file hashed by Python's hashlib, and the
// hashlib digests of the committed fixtures (data/fixtures/io/sha256.txt).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "common/error.hpp"
#include "common/hash.hpp"
#include "test_support.hpp"

namespace cm {
namespace {

TEST(Sha256, KnownVectors) {
  const test::ScratchDir dir;
  std::ofstream(dir / "empty").close();
  std::ofstream(dir / "abc") << "abc";
  EXPECT_EQ(sha256_file((dir / "empty").string()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_file((dir / "abc").string()), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// 2.5 MiB + 3 bytes, byte i = (31 i + 7) mod 256: spans several 1 MiB blocks and ends mid-block.
// Digest: python3 -c "import hashlib; print(hashlib.sha256(bytes((i*31+7)&255 for i in range(5*2**19+3))).hexdigest())"
TEST(Sha256, SpansSeveralBlocks) {
  const test::ScratchDir dir;
  std::string data(5 * (1 << 19) + 3, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 31 + 7) & 0xff);
  std::ofstream(dir / "big", std::ios::binary) << data;
  EXPECT_EQ(sha256_file((dir / "big").string()), "b06fe1fb1424a93da1f4f5631da2a79c672fee22143e2e9dd36f6f5a5d13d396");
}

TEST(Sha256, MatchesHashlibOnFixtures) {
  const auto dir = test::fixtures_dir() / "io";
  std::ifstream list(dir / "sha256.txt");
  std::string digest, name;
  int n = 0;
  while (list >> digest >> name) {
    EXPECT_EQ(sha256_file((dir / name).string()), digest) << name;
    ++n;
  }
  EXPECT_GE(n, 8);
}

TEST(Sha256, UnreadableFileIsNamed) {
  EXPECT_THAT([] { sha256_file("/nonexistent/file"); },
              ::testing::ThrowsMessage<Error>(::testing::HasSubstr("/nonexistent/file: cannot open")));
  const test::ScratchDir dir;
  EXPECT_THAT([&] { sha256_file(dir.path().string()); },
              ::testing::ThrowsMessage<Error>(::testing::HasSubstr(dir.path().string())));
}

}  // namespace
}  // namespace cm
