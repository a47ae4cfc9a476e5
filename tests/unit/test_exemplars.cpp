// read_exemplars and read_h5_f32 on the h5py-written fixtures (data/fixtures/io/exemplars.h5, tokens.h5,
// catmerge_style.h5): the leading images, float64 conversion, token sequences with and without masks,
// uint8 images, ranges, and every error naming file:/group.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <tuple>

#include "common/error.hpp"
#include "io/exemplars.hpp"
#include "test_support.hpp"

namespace cm {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

std::string fixture(const std::string& name) { return (test::fixtures_dir() / "io" / name).string(); }

TEST(Exemplars, KeepsTheFirstImages) {
  for (const std::string group : {"task_a", "/task_a", "task_a/"}) {
    const Exemplars img = read_exemplars(fixture("exemplars.h5"), group, 2, "experts.0.exemplars");
    EXPECT_EQ(img.n, 2);
    EXPECT_EQ(img.channels, 2);
    EXPECT_EQ(img.height, 4);
    EXPECT_EQ(img.width, 4);
    ASSERT_EQ(img.pixels.size(), 64u);
    for (size_t i = 0; i < img.pixels.size(); ++i) EXPECT_EQ(img.pixels[i], static_cast<float>(i) * 0.25f - 8) << i;
  }
}

TEST(Exemplars, ConvertsFloat64) {
  const Exemplars img = read_exemplars(fixture("exemplars.h5"), "/task_b", 2, "");
  ASSERT_EQ(img.pixels.size(), 64u);
  for (size_t i = 0; i < img.pixels.size(); ++i) EXPECT_EQ(img.pixels[i], static_cast<float>(i) * 0.5f) << i;
}

TEST(Exemplars, NaNBeyondTheKeptImagesIsIgnored) {
  EXPECT_EQ(read_exemplars(fixture("exemplars.h5"), "nan", 1, "").n, 1);
}

TEST(Exemplars, ErrorsNameFileAndGroup) {
  const std::string file = fixture("exemplars.h5");
  const auto error_of = [](const std::string& f, const std::string& group, int64_t count) -> std::string {
    try {
      read_exemplars(f, group, count, "experts.1.exemplars");
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  const std::vector<std::tuple<std::string, std::string, int64_t, std::string>> cases = {
      {"/nonexistent.h5", "task_a", 1, "no such file"},
      {file, "nope", 1, "no 'nope'"},
      {file, "empty_group", 1, "no 'empty_group/pixel_values'"},
      {file, "rank3", 1, "expected [N, C, H, W]"},
      {file, "task_a", 4, "has 3 images, 4 are needed"},
      {file, "task_a", 0, "at least 1"},
      {file, "nan", 2, "NaN"},
      {file, "inf", 1, "infinite"},
      {file, "ints", 1, "not float32 or float64"},
  };
  for (const auto& [f, group, count, problem] : cases) {
    const std::string got = error_of(f, group, count);
    EXPECT_THAT(got, AllOf(HasSubstr(f + ":/" + group), HasSubstr(problem), HasSubstr("experts.1.exemplars"))) << group;
    EXPECT_EQ(got.find('\n'), std::string::npos);
  }
  // A path inside the file that is not a dataset.
  EXPECT_THAT(error_of(file, "", 1), AllOf(HasSubstr(file + ":/"), HasSubstr("'pixel_values'")));
}

TEST(Exemplars, ReadH5F32ConvertsEveryFloatStorage) {
  const std::string file = fixture("catmerge_style.h5");
  std::vector<int64_t> shape;
  EXPECT_EQ(read_h5_f32(file, "a.weight", &shape), (std::vector<float>{1, -2, 0.5f, 0.25f, 3, -4}));
  EXPECT_EQ(shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(read_h5_f32(file, "/b.weight", nullptr), (std::vector<float>{1.5f, -0.125f, 65504, std::ldexp(1.0f, -24)}));
  EXPECT_EQ(read_h5_f32(file, "c.bias", nullptr), (std::vector<float>{1, -2.5f, std::ldexp(1.0f, -128)}));
  EXPECT_EQ(read_h5_f32(file, "fisher64", nullptr), (std::vector<float>{0.5f, INFINITY}));
  EXPECT_EQ(read_h5_f32(fixture("exemplars.h5"), "task_b/pixel_values", &shape).size(), 64u);
  EXPECT_EQ(shape, (std::vector<int64_t>{2, 2, 4, 4}));
  for (const char* bad : {"plain_u16", "steps", "meta", "missing"}) {
    try {
      read_h5_f32(file, bad, nullptr);
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr(file + ":/" + bad));
    }
  }
}

TEST(Exemplars, TokenSequencesWithAndWithoutMask) {
  const std::string file = fixture("tokens.h5");
  const Exemplars plain = read_exemplars(file, "plain", 2, "");
  EXPECT_EQ(plain.kind, InputKind::Tokens);
  EXPECT_EQ(plain.n, 2);
  EXPECT_EQ(plain.length, 5);
  EXPECT_EQ(plain.ids, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(plain.mask, std::vector<uint8_t>(10, 1));
  EXPECT_EQ(plain.real_tokens(), 10);
  // int32 ids, a boolean mask, and a range that starts past the first sequence.
  const Exemplars masked = read_exemplars(file, "/masked/", 2, "");
  EXPECT_EQ(masked.ids, (std::vector<int64_t>{0, 0, 7, 8, 5, 6, 7, 8}));
  EXPECT_EQ(masked.mask, (std::vector<uint8_t>{0, 0, 1, 1, 1, 1, 1, 1}));
  EXPECT_EQ(masked.real_tokens(), 6);
  EXPECT_EQ(read_exemplar_range(file, "masked", 1, 1, "").ids, (std::vector<int64_t>{5, 6, 7, 8}));
  EXPECT_EQ(read_exemplars(file, "u8mask", 1, "").mask, (std::vector<uint8_t>{1, 1, 0}));
  EXPECT_EQ(count_exemplars(file, "plain", ""), 3);
}

TEST(Exemplars, ByteImagesAreScaledToPixelValues) {
  const Exemplars img = read_exemplar_range(fixture("tokens.h5"), "bytes", 1, 1, "");
  EXPECT_EQ(img.kind, InputKind::Images);
  EXPECT_EQ(img.pixels, (std::vector<float>{0.0f / 127.5f - 1.0f, 51.0f / 127.5f - 1.0f, 127.0f / 127.5f - 1.0f,
                                            255.0f / 127.5f - 1.0f}));
}

TEST(Exemplars, BadTokenGroupsAreOneLineNamingTheGroup) {
  const std::string file = fixture("tokens.h5");
  const std::vector<std::tuple<std::string, int64_t, std::string>> cases = {
      {"plain", 4, "input_ids has 3 sequences, 4 are needed"},
      {"negative", 1, "input_ids element 1 is negative"},
      {"mask_two", 1, "attention_mask element 1 is 2, not 0 or 1"},
      {"mask_shape", 1, "attention_mask has shape [2, 3], input_ids [2, 4]"},
      {"all_padding", 2, "sequence 1 is all padding"},
      {"float_ids", 1, "input_ids is not an integer dataset"},
      {"rank1", 1, "expected [N, L]"},
      {"signed_bytes", 1, "images is not uint8"},
      {"empty", 1, "no 'empty'"},
  };
  for (const auto& [group, count, problem] : cases) {
    const std::string got = test::error_of([&] { read_exemplars(file, group, count, "experts.2.exemplars"); });
    EXPECT_THAT(got, AllOf(HasSubstr(file + ":/" + group), HasSubstr(problem), HasSubstr("experts.2.exemplars")))
        << group;
    EXPECT_EQ(got.find('\n'), std::string::npos);
  }
}

}  // namespace
}  // namespace cm
