#pragma once
#include <cstdint>
#include <string_view>

namespace cm {

// FNV-1a 64 of the bytes of `s`; keys DARE's masks by tensor name.
inline uint64_t fnv1a64(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace cm
