// SafetensorsFile: reading every dtype as numpy/torch do (committed fixtures), and one test per rule of
// the format, each on a damaged copy of a valid file written to a scratch folder.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "dtype_convert.hpp"
#include "io/exemplars.hpp"
#include "io/safetensors.hpp"
#include "test_support.hpp"

namespace cm {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using json = nlohmann::ordered_json;

std::string fixture(const std::string& name) { return (test::fixtures_dir() / "io" / name).string(); }

// Writes the 8-byte little-endian length, `header` exactly as given, then `data`.
void write_raw(const std::string& path, const std::string& header, const std::string& data) {
  std::string bytes(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  std::ofstream(path, std::ios::binary) << bytes << header << data;
}

// alpha: F32 [2, 3] at [0, 24); beta: F32 [4] at [24, 40).
json valid_header() {
  return json{{"alpha", {{"dtype", "F32"}, {"shape", {2, 3}}, {"data_offsets", {0, 24}}}},
              {"beta", {{"dtype", "F32"}, {"shape", {4}}, {"data_offsets", {24, 40}}}}};
}

class SafetensorsCorrupt : public ::testing::Test {
 protected:
  // The message of the cm::Error that opening `header` + `data` gives.
  std::string error_of(const std::string& header, const std::string& data = std::string(40, '\0')) {
    write_raw(path_, header, data);
    try {
      SafetensorsFile f(path_);
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "message must be one line";
      return e.what();
    }
    ADD_FAILURE() << "opened without error: " << header;
    return "";
  }
  std::string error_of(const json& header, const std::string& data = std::string(40, '\0')) {
    return error_of(header.dump(), data);
  }

  test::ScratchDir dir_;
  const std::string path_ = (dir_ / "model.safetensors").string();
};

TEST(Safetensors, ReadsEveryFloatDtypeAsTorchDoes) {
  const SafetensorsFile f(fixture("dtypes.safetensors"));
  for (const char* name : {"f32", "f16", "bf16", "f16_2d", "scalar", "empty"}) {
    std::vector<int64_t> shape;
    const std::vector<float> want = read_h5_f32(fixture("dtypes_expected.h5"), name, &shape);
    const std::vector<float> got = f.read(name);
    ASSERT_NE(f.find(name), nullptr) << name;
    EXPECT_EQ(f.find(name)->shape, shape) << name;
    ASSERT_EQ(got.size(), want.size()) << name;
    for (size_t i = 0; i < got.size(); ++i)  // bitwise: signed zeros and infinities must survive
      EXPECT_EQ(float_bits(got[i]), float_bits(want[i])) << name << "[" << i << "] " << got[i] << " vs " << want[i];
  }
}

TEST(Safetensors, ListsFloatAndOtherTensorsInDataOrder) {
  const SafetensorsFile f(fixture("dtypes.safetensors"));
  std::vector<std::string> names;
  for (const TensorInfo& t : f.tensors()) names.push_back(std::string(dtype_name(t.dtype)) + " " + t.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"F32 empty", "F32 f32", "F32 scalar", "BF16 bf16", "F16 f16", "F16 f16_2d"}));
  ASSERT_EQ(f.other_tensors().size(), 2u);
  EXPECT_EQ(f.other_tensors()[0].name, "position_ids");
  EXPECT_EQ(f.other_tensors()[0].dtype, "I64");
  EXPECT_EQ(f.other_tensors()[0].shape, (std::vector<int64_t>{1, 6}));
  EXPECT_EQ(f.other_tensors()[1].name, "mask");
  EXPECT_EQ(f.other_tensors()[1].dtype, "BOOL");
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_TRUE(f.contains("position_ids"));
  EXPECT_EQ(f.find("position_ids"), nullptr);
  EXPECT_EQ(f.find("scalar")->shape, std::vector<int64_t>{});
  EXPECT_EQ(f.read("scalar"), std::vector<float>{42.5f});
  EXPECT_TRUE(f.read("empty").empty());
}

TEST(Safetensors, ReadingANonFloatTensorNamesItsDtype) {
  const SafetensorsFile f(fixture("dtypes.safetensors"));
  try {
    f.read("position_ids");
    FAIL() << "read an I64 tensor as float";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(),
                AllOf(HasSubstr(fixture("dtypes.safetensors")), HasSubstr("'position_ids'"), HasSubstr("I64")));
  }
  EXPECT_THROW(f.read("no_such_tensor"), Error);
}

TEST(Safetensors, MissingFileIsNamed) {
  try {
    SafetensorsFile f("/nonexistent/model.safetensors");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "/nonexistent/model.safetensors: no such file or directory");
  }
}

TEST_F(SafetensorsCorrupt, ValidFileOpens) {
  std::string data(40, '\0');
  const float one = 1.5f;
  std::memcpy(&data[24], &one, 4);
  write_raw(path_, valid_header().dump(), data);
  const SafetensorsFile f(path_);
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.read("beta"), (std::vector<float>{1.5f, 0, 0, 0}));
}

TEST_F(SafetensorsCorrupt, ShorterThanTheLengthField) {
  std::ofstream(path_, std::ios::binary) << "abcde";
  try {
    SafetensorsFile f(path_);
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr(path_), HasSubstr("too short")));
  }
}

TEST_F(SafetensorsCorrupt, HugeHeaderLength) {
  write_raw(path_, valid_header().dump(), std::string(40, '\0'));
  {
    std::fstream f(path_, std::ios::in | std::ios::out | std::ios::binary);
    const char huge[8] = {0, 0, 0, 0, 0, 1, 0, 0};  // 2^40
    f.write(huge, 8);
  }
  try {
    SafetensorsFile f(path_);
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr(path_), HasSubstr("exceeds the limit")));
  }
}

TEST_F(SafetensorsCorrupt, HeaderRunsPastTheFile) {
  const std::string header = valid_header().dump();
  write_raw(path_, header, "");
  std::filesystem::resize_file(path_, 8 + header.size() - 3);
  try {
    SafetensorsFile f(path_);
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr(path_), HasSubstr("runs past the end")));
  }
}

TEST_F(SafetensorsCorrupt, TruncatedData) {
  EXPECT_THAT(error_of(valid_header(), std::string(36, '\0')),
              AllOf(HasSubstr(path_), HasSubstr("'beta'"), HasSubstr("truncated")));
}

TEST_F(SafetensorsCorrupt, TrailingBytes) {
  EXPECT_THAT(error_of(valid_header(), std::string(44, '\0')), AllOf(HasSubstr(path_), HasSubstr("4 trailing bytes")));
}

TEST_F(SafetensorsCorrupt, BadJson) {
  EXPECT_THAT(error_of(std::string("{\"alpha\": {\"dtype\": ")), AllOf(HasSubstr(path_), HasSubstr("not valid JSON")));
  EXPECT_THAT(error_of(std::string("[1, 2]")), AllOf(HasSubstr(path_), HasSubstr("not a JSON object")));
}

TEST_F(SafetensorsCorrupt, OverlappingOffsets) {
  json h = valid_header();
  h["beta"]["data_offsets"] = {20, 36};
  EXPECT_THAT(error_of(h, std::string(36, '\0')),
              AllOf(HasSubstr(path_), HasSubstr("'beta'"), HasSubstr("overlap tensor 'alpha'")));
}

TEST_F(SafetensorsCorrupt, GapBetweenTensors) {
  json h = valid_header();
  h["beta"]["data_offsets"] = {28, 44};
  EXPECT_THAT(error_of(h, std::string(44, '\0')), AllOf(HasSubstr(path_), HasSubstr("'beta'"), HasSubstr("gap of 4")));
}

TEST_F(SafetensorsCorrupt, DataNotStartingAtZero) {
  const json h = {{"alpha", {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {4, 8}}}}};
  EXPECT_THAT(error_of(h, std::string(8, '\0')), AllOf(HasSubstr(path_), HasSubstr("'alpha'"), HasSubstr("gap")));
}

TEST_F(SafetensorsCorrupt, ShapeDoesNotMatchOffsets) {
  json h = valid_header();
  h["alpha"]["shape"] = {2, 2};
  EXPECT_THAT(error_of(h),
              AllOf(HasSubstr(path_), HasSubstr("'alpha'"), HasSubstr("needs 16 bytes"), HasSubstr("hold 24")));
}

TEST_F(SafetensorsCorrupt, BadEntries) {
  const std::vector<std::pair<std::function<void(json&)>, std::string>> cases = {
      {[](json& h) {
         h["alpha"]["shape"] = {-2, 3};
       },
       "non-negative integers"},
      {[](json& h) {
         h["alpha"]["shape"] = {2.0, 3};
       },
       "non-negative integers"},
      {[](json& h) { h["alpha"]["shape"] = "2x3"; }, "'shape'"},
      {[](json& h) { h["alpha"]["dtype"] = "F128"; }, "unknown dtype 'F128'"},
      {[](json& h) { h["alpha"].erase("dtype"); }, "'dtype'"},
      {[](json& h) { h["alpha"].erase("data_offsets"); }, "'data_offsets'"},
      {[](json& h) {
         h["alpha"]["data_offsets"] = {0, 24, 40};
       },
       "'data_offsets'"},
      {[](json& h) {
         h["alpha"]["data_offsets"] = {24, 0};
       },
       "end before they begin"},
      {[](json& h) {
         h["alpha"]["shape"] = {1ull << 40, 1ull << 40};
       },
       "overflows"},
      {[](json& h) {  // 4 * 2^62 bytes wraps to exactly 0, which must not pass for an empty tensor
         h["alpha"]["shape"] = {1ull << 31, 1ull << 31};
         h["alpha"]["data_offsets"] = {0, 0};
       },
       "overflows"},
      {[](json& h) { h["alpha"] = 7; }, "not a JSON object"},
  };
  for (const auto& [damage, problem] : cases) {
    json h = valid_header();
    damage(h);
    EXPECT_THAT(error_of(h), AllOf(HasSubstr(path_), HasSubstr("'alpha'"), HasSubstr(problem))) << h.dump();
  }
}

TEST_F(SafetensorsCorrupt, DuplicateName) {
  const std::string header = R"({"alpha": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},)"
                             R"( "alpha": {"dtype": "F32", "shape": [4], "data_offsets": [16, 32]}})";
  EXPECT_THAT(error_of(header, std::string(32, '\0')),
              AllOf(HasSubstr(path_), HasSubstr("'alpha'"), HasSubstr("twice")));
}

TEST_F(SafetensorsCorrupt, Metadata) {
  json h = valid_header();
  h["__metadata__"] = {{"format", "pt"}, {"n", 3}};
  EXPECT_THAT(error_of(h), AllOf(HasSubstr(path_), HasSubstr("__metadata__"), HasSubstr("'n'")));
  h["__metadata__"] = {{"format", "pt"}};
  write_raw(path_, h.dump(), std::string(40, '\0'));
  EXPECT_EQ(SafetensorsFile(path_).metadata().at("format"), "pt");
}

TEST_F(SafetensorsCorrupt, EveryFormatDtypeIsAccepted) {
  const std::vector<std::pair<std::string, int>> dtypes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"U16", 2}, {"I16", 2}, {"F16", 2},     {"BF16", 2},   {"U32", 4},
      {"I32", 4},  {"F32", 4}, {"F64", 8}, {"U64", 8}, {"I64", 8}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
  json h = json::object();
  uint64_t offset = 0;
  for (const auto& [dtype, size] : dtypes) {
    h["t_" + dtype] = {{"dtype", dtype}, {"shape", {3}}, {"data_offsets", {offset, offset + 3 * size}}};
    offset += 3 * size;
  }
  write_raw(path_, h.dump(), std::string(offset, '\0'));
  const SafetensorsFile f(path_);
  EXPECT_EQ(f.tensors().size(), 3u);
  EXPECT_EQ(f.other_tensors().size(), dtypes.size() - 3);
  try {
    f.read("t_F8_E4M3");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr(path_), HasSubstr("'t_F8_E4M3'"), HasSubstr("F8_E4M3")));
  }
}

// The format does not pad the header, so 16-bit data can start at an odd address.
TEST_F(SafetensorsCorrupt, UnalignedHalfDataReads) {
  std::string header = R"({"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]}})";
  if (header.size() % 2 == 0) header += ' ';
  const uint16_t bits[3] = {0x3c00, 0xc000, 0x0001};  // 1, -2, 2^-24
  write_raw(path_, header, std::string(reinterpret_cast<const char*>(bits), 6));
  EXPECT_EQ(SafetensorsFile(path_).read("h"), (std::vector<float>{1.0f, -2.0f, std::ldexp(1.0f, -24)}));
}

TEST_F(SafetensorsCorrupt, ZeroDimensionMakesAnyShapeEmpty) {
  json h = valid_header();
  h["alpha"]["shape"] = {1ull << 40, 0, 1ull << 40};
  h["alpha"]["data_offsets"] = {0, 0};
  h["beta"]["data_offsets"] = {0, 16};
  write_raw(path_, h.dump(), std::string(16, '\0'));
  EXPECT_TRUE(SafetensorsFile(path_).read("alpha").empty());
}

TEST_F(SafetensorsCorrupt, EmptyHeaderAndNoData) {
  write_raw(path_, "{}", "");
  EXPECT_TRUE(SafetensorsFile(path_).tensors().empty());
}

}  // namespace
}  // namespace cm
