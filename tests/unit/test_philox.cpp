// Philox4x32-10 against the known-answer vectors of Random123 (kat_vectors), and the DARE keep rule.
#include <gtest/gtest.h>

#include <cmath>

#include "philox.hpp"

namespace cm {
namespace {

void expect_kat(Philox4 ctr, uint32_t key0, uint32_t key1, Philox4 want) {
  const Philox4 got = philox4x32_10(ctr, key0, key1);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(got.v[i], want.v[i]) << "word " << i;
}

TEST(PhiloxKat, Zero) {
  expect_kat({{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}});
}

TEST(PhiloxKat, AllOnes) {
  expect_kat({{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, 0xffffffffu, 0xffffffffu,
             {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}});
}

TEST(PhiloxKat, Pi) {
  expect_kat({{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, 0xa4093822u, 0x299f31d0u,
             {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}});
}

// dare_keep is word 0 of Philox at counter (lo32 i, hi32 i, expert, seed), key (lo32 h, hi32 h), kept when
// word0 * 2^-32 >= p: p = 0 keeps all, and the rule matches the generator word for word.
TEST(PhiloxDare, KeepRuleUsesWordZero) {
  const uint64_t h = 0x0123456789abcdefull, i = 0x500000007ull;
  const Philox4 r = philox4x32_10({{7u, 5u, 3u, 11u}}, 0x89abcdefu, 0x01234567u);
  const double u = r.v[0] * 0x1p-32;
  EXPECT_TRUE(dare_keep(h, 3, 11, i, 0.0));
  EXPECT_TRUE(dare_keep(h, 3, 11, i, u));
  EXPECT_FALSE(dare_keep(h, 3, 11, i, std::nextafter(u, 1.0)));
}

}  // namespace
}  // namespace cm
