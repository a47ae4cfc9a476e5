#pragma once
// Philox4x32-10 (Salmon et al., SC'11), the counter-based generator behind DARE's drop masks.
// A mask bit depends only on (seed, expert, tensor name, element index), never on backend, ranks or threads.
#include <cstdint>

#include "host_device.hpp"

namespace cm {

struct Philox4 {
  uint32_t v[4];
};

CM_HD void philox_mulhilo(uint32_t a, uint32_t b, uint32_t* hi, uint32_t* lo) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  *lo = static_cast<uint32_t>(p);
}

CM_HD Philox4 philox4x32_10(Philox4 ctr, uint32_t key0, uint32_t key1) {
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(0xD2511F53u, ctr.v[0], &hi0, &lo0);
    philox_mulhilo(0xCD9E8D57u, ctr.v[2], &hi1, &lo1);
    ctr = Philox4{{hi1 ^ ctr.v[1] ^ key0, lo1, hi0 ^ ctr.v[3] ^ key1, lo0}};
    key0 += 0x9E3779B9u;
    key1 += 0xBB67AE85u;
  }
  return ctr;
}

// DARE keep decision for element `index` of a tensor whose name hashes to `name_hash` (FNV-1a 64):
// counter = (lo32(index), hi32(index), expert, seed), key = (lo32(name_hash), hi32(name_hash));
// u = first output word * 2^-32; the element is kept when u >= p (probability 1 - p).
CM_HD bool dare_keep(uint64_t name_hash, uint32_t expert, uint32_t seed, uint64_t index, double p) {
  const Philox4 ctr{{static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32), expert, seed}};
  const Philox4 r = philox4x32_10(ctr, static_cast<uint32_t>(name_hash), static_cast<uint32_t>(name_hash >> 32));
  return static_cast<double>(r.v[0]) * 0x1p-32 >= p;
}

}  // namespace cm
