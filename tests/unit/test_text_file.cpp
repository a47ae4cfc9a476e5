// io/text_file: a text output appears whole under its name with nothing else beside it; a set of outputs
// of which one cannot be written leaves none of them, nor any temporary, and the error names that file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "io/text_file.hpp"
#include "test_support.hpp"

namespace cm {
namespace {

namespace fs = std::filesystem;

size_t entries(const fs::path& dir) {
  size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) n += e.is_regular_file() ? 1 : 0;
  return n;
}

TEST(TextFile, WritesWholeIntoNewFolders) {
  const test::ScratchDir dir;
  const fs::path path = dir / "a/b/table.csv";
  write_text_file(path.string(), "x,y\n1,2\n");
  EXPECT_EQ(test::file_bytes(path), "x,y\n1,2\n");
  write_text_file(path.string(), "z\n");
  EXPECT_EQ(test::file_bytes(path), "z\n");
  EXPECT_EQ(entries(dir.path()), 1u);
}

TEST(TextFile, OneFailureLeavesNoneOfTheSet) {
  const test::ScratchDir dir;
  std::ofstream(dir / "blocker") << "a file where a folder is needed";
  const std::string csv = (dir / "out.csv").string(), json = (dir / "blocker/out.json").string();
  const std::string err = test::error_of([&] { write_text_files({{csv, "csv\n"}, {json, "{}\n"}}); });
  EXPECT_EQ(err.rfind(json + ": cannot write: ", 0), 0u) << err;
  EXPECT_FALSE(fs::exists(csv));
  EXPECT_EQ(entries(dir.path()), 1u);  // the blocker alone: no temporary is left

  // An earlier output of the same paths stays as it was.
  write_text_file(csv, "old\n");
  EXPECT_NE(test::error_of([&] { write_text_files({{csv, "new\n"}, {json, "{}\n"}}); }), "(no error)");
  EXPECT_EQ(test::file_bytes(csv), "old\n");
  EXPECT_EQ(entries(dir.path()), 2u);
}

}  // namespace
}  // namespace cm
