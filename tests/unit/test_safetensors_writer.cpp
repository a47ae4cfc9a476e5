// The sharded safetensors writer: the layout's rules (sizes, parts, alignment, names) and files that catmerge's
// own validating reader (io/safetensors.hpp: no gaps, offsets in order, exact sizes) reads back byte for byte.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "common/error.hpp"
#include "io/safetensors.hpp"
#include "io/safetensors_writer.hpp"
#include "test_support.hpp"

namespace cm {
namespace {

StoredTensor tensor(const std::string& name, const std::string& dtype, std::vector<int64_t> shape) {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return {name, dtype, shape, n * safetensors_element_size(dtype)};
}

std::vector<std::string> names_of(const ShardLayout::Shard& s, const std::vector<StoredTensor>& all) {
  std::vector<std::string> names;
  for (size_t t : s.tensors) names.push_back(all[t].name);
  return names;
}

TEST(ShardLayout, SplitsEachPartBySizeAndNumbersAcrossParts) {
  const std::vector<StoredTensor> t = {tensor("a", "F32", {10}), tensor("b", "F32", {10}), tensor("c", "F32", {30}),
                                       tensor("d", "F32", {5}), tensor("e", "F32", {5})};
  // a, b on rank 0; c, d, e on rank 1: 80 bytes per shard at most, c (120 bytes) alone.
  const ShardLayout l = plan_shards(t, {0, 0, 1, 1, 1}, 2, 80);
  ASSERT_EQ(l.shards.size(), 3u);
  EXPECT_EQ(l.shards[0].part, 0);
  EXPECT_EQ(names_of(l.shards[0], t), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(l.shards[1].part, 1);
  EXPECT_EQ(names_of(l.shards[1], t), (std::vector<std::string>{"c"}));
  EXPECT_EQ(names_of(l.shards[2], t), (std::vector<std::string>{"d", "e"}));
  EXPECT_EQ(l.shards[0].file, "model-00001-of-00003.safetensors");
  EXPECT_EQ(l.shards[2].file, "model-00003-of-00003.safetensors");
  EXPECT_EQ(l.total_bytes, 240u);
  EXPECT_EQ(l.shards[2].begin, (std::vector<uint64_t>{0, 20}));
}

TEST(ShardLayout, APartWithoutTensorsHasNoShard) {
  const std::vector<StoredTensor> t = {tensor("a", "F32", {4})};
  const ShardLayout l = plan_shards(t, {2}, 3, 1000);
  ASSERT_EQ(l.shards.size(), 1u);
  EXPECT_EQ(l.shards[0].part, 2);
  EXPECT_EQ(l.shards[0].file, "model-00001-of-00001.safetensors");
}

TEST(ShardLayout, OrdersDataByFallingElementSizeSoEveryTensorIsAligned) {
  const std::vector<StoredTensor> t = {tensor("mask", "BOOL", {3}), tensor("w", "BF16", {3}),
                                       tensor("ids", "I64", {2}), tensor("x", "F32", {1})};
  const ShardLayout l = plan_shards(t, {0, 0, 0, 0}, 1, 1 << 20);
  EXPECT_EQ(names_of(l.shards[0], t), (std::vector<std::string>{"ids", "x", "w", "mask"}));
  const std::string header = safetensors_header(l.shards[0], t, {{"format", "pt"}});
  EXPECT_EQ(header.size() % 8, 0u);
  for (size_t i = 0; i < l.shards[0].tensors.size(); ++i)
    EXPECT_EQ((header.size() + l.shards[0].begin[i]) % safetensors_element_size(t[l.shards[0].tensors[i]].dtype), 0u);
}

TEST(SafetensorsWriter, WritesFilesTheValidatingReaderReadsBack) {
  const test::ScratchDir dir;
  const std::vector<StoredTensor> t = {tensor("w", "F32", {2, 3}), tensor("ids", "I64", {1, 4}),
                                       tensor("h", "BF16", {3}), tensor("flag", "BOOL", {5})};
  const ShardLayout l = plan_shards(t, {0, 0, 1, 1}, 2, 1 << 20);
  const std::vector<float> w = {1, -2, 3.5f, 0, 1e-3f, -7};
  const std::vector<int64_t> ids = {0, 1, 2, 1ll << 40};
  const std::vector<uint16_t> h = {0x3f80, 0xc000, 0x7fc0};
  const unsigned char flag[5] = {1, 0, 0, 1, 1};
  {
    SafetensorsWriter part0(dir.path().string(), l, 0, t, {{"format", "pt"}, {"method", "cat"}});
    SafetensorsWriter part1(dir.path().string(), l, 1, t, {{"format", "pt"}, {"method", "cat"}});
    // In pieces and out of order, as merge workers write.
    part0.write_stored_bytes("w", 12, w.data() + 3, 12);
    part0.write_stored_bytes("w", 0, w.data(), 12);
    part0.write_stored("ids", ids.data());
    part1.write_stored("flag", flag);
    part1.write_stored("h", h.data());
    part0.close();
    part1.close();
  }
  const SafetensorsFile f0((dir / l.shards[0].file).string()), f1((dir / l.shards[1].file).string());
  EXPECT_EQ(f0.metadata().at("method"), "cat");
  EXPECT_EQ(f0.read("w"), w);
  std::vector<int64_t> ids_back(4);
  f0.read_stored("ids", 0, sizeof(int64_t) * 4, ids_back.data());
  EXPECT_EQ(ids_back, ids);
  const std::vector<float> h_back = f1.read("h");
  ASSERT_EQ(h_back.size(), 3u);
  EXPECT_EQ(h_back[0], 1.0f);
  EXPECT_EQ(h_back[1], -2.0f);
  EXPECT_TRUE(std::isnan(h_back[2]));
  unsigned char flag_back[5] = {};
  f1.read_stored("flag", 0, 5, flag_back);
  EXPECT_EQ(std::memcmp(flag, flag_back, 5), 0);
}

TEST(SafetensorsWriter, RemovesItsFilesUnlessClosed) {
  const test::ScratchDir dir;
  const std::vector<StoredTensor> t = {tensor("w", "F32", {4})};
  const ShardLayout l = plan_shards(t, {0}, 1, 1 << 20);
  { SafetensorsWriter w(dir.path().string(), l, 0, t, {}); }
  EXPECT_TRUE(test::list_dir(dir.path()).empty());
}

TEST(SafetensorsWriter, NamesTheFileItCannotCreate) {
  const std::vector<StoredTensor> t = {tensor("w", "F32", {4})};
  const ShardLayout l = plan_shards(t, {0}, 1, 1 << 20);
  const std::string err = test::error_of([&] { SafetensorsWriter w("/nonexistent/dir", l, 0, t, {}); });
  EXPECT_EQ(err, "/nonexistent/dir/model-00001-of-00001.safetensors: cannot create: No such file or directory");
}

}  // namespace
}  // namespace cm
