#pragma once
// Which keys a query attends to. CLIP attends to every token; a decoder (LLaMA, Mistral, Qwen2) only to
// itself and earlier positions (causal), within a sliding window where the model has one (Mistral), and
// never to a padding token. One predicate for the CPU backend, the CUDA kernel and their tests.
#include <stdint.h>

#include "host_device.hpp"

namespace cm {

struct AttentionMask {
  bool causal = false;             // query i sees key j only when j <= i
  int64_t window = 0;              // > 0: and only when i - j < window (transformers' sliding_window)
  const uint8_t* keys = nullptr;   // [batch, seq] in the memory of whoever computes: 0 marks padding
};

// Whether query i of sequence b attends to key j (positions within the sequence of length seq).
CM_HD bool attends(const AttentionMask& m, int64_t b, int64_t seq, int64_t i, int64_t j) {
  if (m.causal && j > i) return false;
  if (m.window > 0 && i - j >= m.window) return false;
  return m.keys == nullptr || m.keys[b * seq + j] != 0;
}

// Heads of queries, keys and values. Grouped-query attention: kv_heads divides heads, and query head h
// reads key/value head h / (heads / kv_heads) (transformers' repeat_kv). q, out: [batch * seq, heads *
// head_dim] rows; k, v: [batch * seq, kv_heads * head_dim] rows.
struct AttentionShape {
  int64_t batch = 0, seq = 0, heads = 0, kv_heads = 0, head_dim = 0;
};

// The key/value head query head h reads.
CM_HD int64_t attention_kv_head(const AttentionShape& s, int64_t h) { return h / (s.heads / s.kv_heads); }

}  // namespace cm
