#pragma once
// The attention cases the CPU twin (unit) and the CUDA kernel (gpu) tests share: a shape, a mask, and the
// padding that makes the key mask. Multiples of 1/8 as inputs keep every dot product exact in float.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "attention_mask.hpp"

namespace cm::testing {

struct AttentionCase {
  AttentionShape s;
  bool causal;
  int64_t window;
  // Padding per sequence (cycled over the batch): > 0 pads that many keys on the left, < 0 on the right;
  // empty: no key mask.
  std::vector<int64_t> pad;
};

inline std::vector<uint8_t> key_mask(const AttentionCase& c) {
  std::vector<uint8_t> keys(static_cast<size_t>(c.s.batch * c.s.seq), 1);
  for (int64_t b = 0; b < c.s.batch; ++b) {
    const int64_t p = c.pad[static_cast<size_t>(b) % c.pad.size()];
    for (int64_t j = 0; j < c.s.seq; ++j)
      if ((p > 0 && j < p) || (p < 0 && j >= c.s.seq + p)) keys[static_cast<size_t>(b * c.s.seq + j)] = 0;
  }
  return keys;
}

inline std::string case_name(const AttentionCase& c) {
  return "seq " + std::to_string(c.s.seq) + " heads " + std::to_string(c.s.heads) + "/" + std::to_string(c.s.kv_heads) +
         " hd " + std::to_string(c.s.head_dim) + " causal " + std::to_string(c.causal) + " window " +
         std::to_string(c.window) + " padded " + std::to_string(!c.pad.empty());
}

// Multiples of 1/8 in [-2, 2]: every dot product of up to 256 of them is exact in float whatever the order
// or fused multiply-adds, so kernel, twin and backend score alike and differ only in exp and the sums.
inline std::vector<float> eighths(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> u(-16, 16);
  std::vector<float> x(n);
  for (float& e : x) e = static_cast<float>(u(rng)) / 8.0f;
  return x;
}

}  // namespace cm::testing
