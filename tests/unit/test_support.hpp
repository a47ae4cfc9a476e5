#pragma once
// Shared helpers of the unit tests: fixture paths, scratch folders, running the catmerge binary,
// and writing small safetensors files for bad-input tests.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "common/dtype.hpp"
#include "io/checkpoint.hpp"

namespace cm::test {

std::filesystem::path source_dir();
std::filesystem::path fixtures_dir();  // data/fixtures

// A fresh empty folder under the system temp dir, removed when the object dies.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

struct CliResult {
  int exit_code = -1;
  std::string out, err;
};

// Runs the built catmerge binary with `args` (no shell quoting needed).
CliResult run_catmerge(const std::vector<std::string>& args);
// The same under Open MPI's mpirun with `ranks` ranks (run as root and oversubscribed where needed).
CliResult run_catmerge_mpi(int ranks, const std::vector<std::string>& args);

// A case of data/fixtures/cases.json by name (null if absent), and every case's name.
nlohmann::json fixture_case(const std::string& name);
std::vector<std::string> fixture_case_names();
// A case's configuration (JSON, which is YAML) with its fixture paths made absolute, the output at `out` and
// `output` merged into its output section.
std::string fixture_case_config(nlohmann::json cfg, const std::string& out,
                                const nlohmann::json& output = nlohmann::json::object());

// A file's bytes.
std::string file_bytes(const std::filesystem::path& path);

struct NamedTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

// Writes an F32 safetensors file (header padded to 8 bytes, tensors in the given order).
void write_safetensors(const std::filesystem::path& path, const std::vector<NamedTensor>& tensors);

// Every tensor of a checkpoint, read back as float32.
std::vector<NamedTensor> read_all(const std::string& checkpoint_path);

// max |got - want| / max |want| over one tensor (infinite for any difference from an all-zero want). With a 16-bit
// `dtype`, a difference within one unit in the last place of that dtype near want counts as none: both sides round
// a float32 result, and a last-bit difference of the float32 can flip the rounding.
double relative_error(const std::vector<float>& got, const std::vector<float>& want, DType dtype = DType::F32);

// GoogleTest expectations: `got` holds as many tensors as `want`, and each of want's with its shape and dtype and
// within `tolerance` of it (relative_error).
void expect_same_tensors(const Checkpoint& got, const Checkpoint& want, double tolerance);

// Files in `dir` (names only, sorted), to check that nothing was left behind.
std::vector<std::string> list_dir(const std::filesystem::path& dir);

// The message of the cm::Error that f throws, or "(no error)".
std::string error_of(const std::function<void()>& f);

}  // namespace cm::test
