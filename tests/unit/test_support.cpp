#include "test_support.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "common/error.hpp"
#include "io/checkpoint.hpp"

namespace cm::test {

namespace fs = std::filesystem;

fs::path source_dir() { return CATMERGE_SOURCE_DIR; }
fs::path fixtures_dir() { return source_dir() / "data" / "fixtures"; }

ScratchDir::ScratchDir() {
  std::random_device rd;
  path_ = fs::temp_directory_path() / ("catmerge-test-" + std::to_string(getpid()) + "-" + std::to_string(rd()));
  fs::create_directories(path_);
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

namespace {

// Runs `argv` (argv[0] a path, or a name looked up on PATH) with stdout and stderr captured.
CliResult run_program(const std::vector<std::string>& argv) {
  const ScratchDir io;
  const fs::path out = io / "stdout", err = io / "stderr";
  const pid_t pid = fork();
  if (pid == 0) {
    if (!freopen(out.c_str(), "w", stdout) || !freopen(err.c_str(), "w", stderr)) _exit(127);
    std::vector<std::string> copy = argv;
    std::vector<char*> args;
    for (auto& a : copy) args.push_back(a.data());
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

}  // namespace

CliResult run_catmerge(const std::vector<std::string>& args) {
  std::vector<std::string> argv{CATMERGE_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_program(argv);
}

CliResult run_catmerge_mpi(int ranks, const std::vector<std::string>& args) {
  setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
  std::vector<std::string> argv{"mpirun", "-np", std::to_string(ranks), CATMERGE_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_program(argv);
}

namespace {

nlohmann::json all_cases() {
  std::ifstream in(fixtures_dir() / "cases.json");
  return in ? nlohmann::json::parse(in) : nlohmann::json::array();
}

}  // namespace

nlohmann::json fixture_case(const std::string& name) {
  for (const auto& c : all_cases())
    if (c["name"] == name) return c;
  return nullptr;
}

std::vector<std::string> fixture_case_names() {
  std::vector<std::string> names;
  for (const auto& c : all_cases()) names.push_back(c["name"]);
  return names;
}

std::string fixture_case_config(nlohmann::json cfg, const std::string& out, const nlohmann::json& output) {
  const std::string root = fixtures_dir().string() + "/";
  cfg["model"]["base"] = root + cfg["model"]["base"].get<std::string>();
  for (auto& e : cfg["experts"])
    for (const char* key : {"path", "exemplars", "fisher"})
      if (e.contains(key)) e[key] = root + e[key].get<std::string>();
  cfg["output"]["path"] = out;
  cfg["output"].update(output);
  return cfg.dump(2);
}

std::string file_bytes(const fs::path& path) { return slurp(path); }

void write_safetensors(const fs::path& path, const std::vector<NamedTensor>& tensors) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  size_t offset = 0;
  for (const auto& t : tensors) {
    const size_t bytes = t.values.size() * sizeof(float);
    header[t.name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t n = text.size();
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(&n), sizeof n);
  f.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& t : tensors)
    f.write(reinterpret_cast<const char*>(t.values.data()), static_cast<std::streamsize>(t.values.size() * 4));
}

std::vector<NamedTensor> read_all(const std::string& checkpoint_path) {
  const auto ck = open_checkpoint(checkpoint_path);
  std::vector<NamedTensor> all;
  for (const TensorInfo& t : ck->tensors()) all.push_back({t.name, t.shape, ck->read(t.name)});
  return all;
}

namespace {

// One unit in the last place of a 16-bit value near v.
double ulp16(DType t, float v) {
  const int e = std::ilogb(std::max(std::fabs(v), t == DType::F16 ? 6.1e-5f : 1e-38f));
  return std::ldexp(1.0, e - (t == DType::F16 ? 10 : 7));
}

}  // namespace

double relative_error(const std::vector<float>& got, const std::vector<float>& want, DType dtype) {
  if (got.size() != want.size()) return std::numeric_limits<double>::infinity();
  double scale = 0, worst = 0;
  for (float v : want) scale = std::max(scale, static_cast<double>(std::fabs(v)));
  for (size_t i = 0; i < got.size(); ++i) {
    double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (dtype != DType::F32 && err <= ulp16(dtype, want[i])) err = 0;
    if (std::isnan(err)) err = std::numeric_limits<double>::infinity();
    worst = std::max(worst, err);
  }
  if (scale > 0) return worst / scale;
  return worst > 0 ? std::numeric_limits<double>::infinity() : 0.0;
}

void expect_same_tensors(const Checkpoint& got, const Checkpoint& want, double tolerance) {
  ASSERT_EQ(got.tensors().size(), want.tensors().size());
  for (const TensorInfo& w : want.tensors()) {
    SCOPED_TRACE(w.name);
    const TensorInfo* g = got.find(w.name);
    ASSERT_NE(g, nullptr) << "missing";
    EXPECT_EQ(g->shape, w.shape);
    EXPECT_EQ(g->dtype, w.dtype);
    EXPECT_LE(relative_error(got.read(w.name), want.read(w.name), w.dtype), tolerance);
  }
}

std::vector<std::string> list_dir(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace cm::test
