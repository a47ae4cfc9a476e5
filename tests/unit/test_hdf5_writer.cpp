// Hdf5Writer: round trip through open_checkpoint, the on-disk types and attributes, the temp-name
// protocol, and byte-identical output.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "common/error.hpp"
#include "dtype_convert.hpp"
#include "io/checkpoint.hpp"
#include "io/h5.hpp"
#include "io/hdf5_writer.hpp"
#include "test_support.hpp"

namespace cm {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

const std::vector<float> kValues = {1.0f, -2.5f, 0.1f, 65519.0f, 1e-7f, -0.0f, 3.0e38f, 1.00048828125f};

void write_sample(const std::string& path) {
  Hdf5Writer w(path);
  w.write_tensor("b.weight", DType::F32, {2, 4}, kValues.data());
  w.write_tensor("a.weight", DType::F16, {8}, kValues.data());
  w.write_tensor("c.bias", DType::BF16, {4, 2}, kValues.data());
  w.write_tensor("scalar", DType::F32, {}, kValues.data());
  w.write_tensor("empty", DType::F16, {0, 3}, nullptr);
  w.set_attr("config_json", std::string(R"({"model_type": "toy"})"));
  w.set_attr("method", std::string("ties"));
  w.set_attr("alpha", 0.3);
  w.set_attr("seed", int64_t{-42});
  w.commit();
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<float> rounded(DType t, const std::vector<float>& x) {
  std::vector<float> out;
  for (float v : x) out.push_back(t == DType::F16 ? f16_to_float(float_to_f16(v)) : bf16_to_float(float_to_bf16(v)));
  return out;
}

void expect_same_bits(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(float_bits(got[i]), float_bits(want[i])) << what << "[" << i << "]";
}

TEST(Hdf5Writer, RoundTripsThroughTheCheckpointReader) {
  const test::ScratchDir dir;
  const std::string path = (dir / "merged.h5").string();
  write_sample(path);
  EXPECT_EQ(test::list_dir(dir.path()), std::vector<std::string>{"merged.h5"});  // the temp name is gone

  const auto ck = open_checkpoint(path);
  std::vector<std::string> names;
  for (const TensorInfo& t : ck->tensors()) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"b.weight", "a.weight", "c.bias", "scalar", "empty"}));  // write order
  EXPECT_EQ(ck->find("b.weight")->dtype, DType::F32);
  EXPECT_EQ(ck->find("a.weight")->dtype, DType::F16);
  EXPECT_EQ(ck->find("c.bias")->dtype, DType::BF16);
  EXPECT_EQ(ck->find("c.bias")->shape, (std::vector<int64_t>{4, 2}));
  EXPECT_EQ(ck->find("scalar")->shape, std::vector<int64_t>{});
  EXPECT_EQ(ck->find("empty")->shape, (std::vector<int64_t>{0, 3}));
  expect_same_bits(ck->read("b.weight"), kValues, "f32");
  expect_same_bits(ck->read("a.weight"), rounded(DType::F16, kValues), "f16");
  expect_same_bits(ck->read("c.bias"), rounded(DType::BF16, kValues), "bf16");
  EXPECT_EQ(ck->read("scalar"), std::vector<float>{1.0f});
  EXPECT_TRUE(ck->read("empty").empty());
  EXPECT_EQ(ck->config_json(), R"({"model_type": "toy"})");
}

TEST(Hdf5Writer, StoresTheDocumentedTypesAndAttributes) {
  const test::ScratchDir dir;
  const std::string path = (dir / "merged.h5").string();
  write_sample(path);
  h5::silence_errors();
  const h5::Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  ASSERT_GE(file.get(), 0);
  const auto storage = [&](const char* name) {
    const h5::Id d(H5Dopen2(file.get(), name, H5P_DEFAULT));
    return h5::storage_of(d.get(), name);
  };
  EXPECT_EQ(storage("b.weight"), h5::Storage::F32);
  EXPECT_EQ(storage("a.weight"), h5::Storage::F16);
  EXPECT_EQ(storage("c.bias"), h5::Storage::BF16);

  const h5::Id bf(H5Dopen2(file.get(), "c.bias", H5P_DEFAULT));
  const h5::Id bf_type(H5Dget_type(bf.get()));
  EXPECT_TRUE(H5Tequal(bf_type.get(), H5T_STD_U16LE) > 0);
  const h5::Id dtype_attr(H5Aopen(bf.get(), "dtype", H5P_DEFAULT));
  const h5::Id dtype_type(H5Aget_type(dtype_attr.get()));
  EXPECT_EQ(H5Tis_variable_str(dtype_type.get()), 0);  // fixed length, as specified
  EXPECT_EQ(h5::string_attr(bf.get(), "dtype", path), "bfloat16");

  const h5::Id layout_ds(H5Dopen2(file.get(), "b.weight", H5P_DEFAULT));
  const h5::Id dcpl(H5Dget_create_plist(layout_ds.get()));
  EXPECT_EQ(H5Pget_layout(dcpl.get()), H5D_CONTIGUOUS);

  const h5::Id root(H5Gopen2(file.get(), "/", H5P_DEFAULT));
  EXPECT_EQ(h5::string_attr(root.get(), "method", path), "ties");
  const h5::Id method(H5Aopen(root.get(), "method", H5P_DEFAULT));
  const h5::Id method_type(H5Aget_type(method.get()));
  EXPECT_GT(H5Tis_variable_str(method_type.get()), 0);
  EXPECT_EQ(H5Tget_cset(method_type.get()), H5T_CSET_UTF8);
  double alpha = 0;
  const h5::Id alpha_attr(H5Aopen(root.get(), "alpha", H5P_DEFAULT));
  ASSERT_GE(H5Aread(alpha_attr.get(), H5T_NATIVE_DOUBLE, &alpha), 0);
  EXPECT_EQ(alpha, 0.3);
  int64_t seed = 0;
  const h5::Id seed_attr(H5Aopen(root.get(), "seed", H5P_DEFAULT));
  const h5::Id seed_type(H5Aget_type(seed_attr.get()));
  EXPECT_TRUE(H5Tequal(seed_type.get(), H5T_STD_I64LE) > 0);
  ASSERT_GE(H5Aread(seed_attr.get(), H5T_NATIVE_INT64, &seed), 0);
  EXPECT_EQ(seed, -42);
}

// Object timestamps have one-second resolution, so two writes more than a second apart would differ
// if any were stored.
TEST(Hdf5Writer, OutputIsByteIdenticalRunToRun) {
  const test::ScratchDir dir;
  write_sample((dir / "first.h5").string());
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  write_sample((dir / "second.h5").string());
  const std::string a = slurp((dir / "first.h5").string()), b = slurp((dir / "second.h5").string());
  EXPECT_FALSE(a.empty());
  EXPECT_TRUE(a == b) << "outputs differ";
}

TEST(Hdf5Writer, UsesTheTempNameUntilCommit) {
  const test::ScratchDir dir;
  const std::string path = (dir / "out.h5").string();
  Hdf5Writer w(path);
  EXPECT_EQ(w.temp_path(), path + ".tmp-" + std::to_string(getpid()));
  w.write_tensor("x", DType::F32, {1}, kValues.data());
  EXPECT_EQ(test::list_dir(dir.path()), std::vector<std::string>{"out.h5.tmp-" + std::to_string(getpid())});
  w.commit();
  EXPECT_EQ(test::list_dir(dir.path()), std::vector<std::string>{"out.h5"});
}

TEST(Hdf5Writer, DestructionWithoutCommitLeavesNothing) {
  const test::ScratchDir dir;
  {
    Hdf5Writer w((dir / "out.h5").string());
    w.write_tensor("x", DType::BF16, {2}, kValues.data());
    w.set_attr("method", std::string("ties"));
  }
  EXPECT_TRUE(test::list_dir(dir.path()).empty());
}

TEST(Hdf5Writer, BadInputIsAnErrorAndLeavesNothing) {
  const test::ScratchDir dir;
  const std::string path = (dir / "out.h5").string();
  const auto error_of = [&](const std::function<void(Hdf5Writer&)>& action) -> std::string {
    try {
      Hdf5Writer w(path);
      action(w);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_THAT(error_of([](Hdf5Writer& w) { w.write_tensor("a/b", DType::F32, {1}, kValues.data()); }),
              AllOf(HasSubstr(path), HasSubstr("'a/b'")));
  EXPECT_THAT(error_of([](Hdf5Writer& w) { w.write_tensor("", DType::F32, {1}, kValues.data()); }), HasSubstr(path));
  EXPECT_THAT(error_of([](Hdf5Writer& w) {
                w.write_tensor("x", DType::F32, {1}, kValues.data());
                w.write_tensor("x", DType::F16, {1}, kValues.data());
              }),
              AllOf(HasSubstr(path), HasSubstr("'x' written twice")));
  EXPECT_THAT(error_of([](Hdf5Writer& w) {
                w.set_attr("k", 1.0);
                w.set_attr("k", int64_t{1});
              }),
              AllOf(HasSubstr(path), HasSubstr("'k' written twice")));
  EXPECT_TRUE(test::list_dir(dir.path()).empty());
}

TEST(Hdf5Writer, UncreatableFileIsNamed) {
  const std::string path = "/nonexistent-dir/out.h5";
  try {
    Hdf5Writer w(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr(path), HasSubstr("cannot create")));
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
  }
}

}  // namespace
}  // namespace cm
