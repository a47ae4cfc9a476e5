#pragma once
// Per-element math of the merge methods (docs/METHODS.md), in float32. The CPU loops in src/methods/ call
// these for every element; a CUDA kernel calls the same functions, so both backends agree bit for bit on
// everything but the libm functions (expf, tanhf).
#include <cmath>
#include <cstdint>

#include "dtype_convert.hpp"
#include "host_device.hpp"

namespace cm {

// ---- exact selection ------------------------------------------------------------------------------
// A 32-bit key whose unsigned order is the order of the floats (-0.0 sorts just below +0.0): positives
// get the sign bit set, negatives have every bit flipped.
CM_HD uint32_t order_key(float f) {
  const uint32_t u = float_bits(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

CM_HD float order_key_value(uint32_t key) {
  return bits_float((key & 0x80000000u) ? (key & 0x7fffffffu) : ~key);
}

// The two 16-bit halves of a key: exact selection (methods/select.cpp, histogram.cu) counts the top half
// of every value in pass 1 and the low half of the values inside one top bin in pass 2.
CM_HD uint32_t key_top_bin(uint32_t key) { return key >> 16; }
CM_HD uint32_t key_low_bin(uint32_t key) { return key & 0xffffu; }

// ---- top-c selection --------------------------------------------------------------------------------
// Whether entry a (score ga) comes before entry b (score gb) in a top-c selection: the larger score first,
// ties to the lower index (METHODS.md).
CM_HD bool ranks_before(double ga, int64_t a, double gb, int64_t b) { return ga > gb || (ga == gb && a < b); }

// ---- CAT norm_scale and shift masks -------------------------------------------------------------------
// Score g_z of one entry z for task k, from t[i] = T_i[z] of every task i (ascending i, i != k):
// norm_scale: sum_i T_i[z]^2 (xsq[k] - lambda xsq[i]), xsq[i] = sum over rows of xhat_i[:, z]^2;
// shift (xsq == nullptr): sum_i T_i[z]^2. In float64.
CM_HD double cat_entry_score(const float* t, const double* xsq, int K, int k, double lambda) {
  double g = 0.0;
  for (int i = 0; i < K; ++i) {
    if (i == k) continue;
    const double ti = t[i];
    g += ti * ti * (xsq ? xsq[k] - lambda * xsq[i] : 1.0);
  }
  return g;
}

// ---- TIES -----------------------------------------------------------------------------------------
// Step 3's option `disjoint` (METHODS.md): the agreeing values' mean (the TIES paper) or their sum.
enum class TiesDisjoint { Mean, Sum };

// What step 1 keeps of one task in one unit: exactly the task's k largest magnitudes of its scope, i.e. every
// entry above `threshold` (the k-th largest |T_k|) and, of the entries equal to it, those whose flat index in
// the tensor is below `cut` (ties go to the lower flat index; methods/ties_trim.hpp finds both).
struct TiesTaskTrim {
  float threshold = 0;
  int64_t cut = 0;
};

// Step 1 for the entry of flat index `index` in its tensor.
CM_HD float ties_trim(float t, const TiesTaskTrim& trim, int64_t index) {
  const float a = fabsf(t);
  return a > trim.threshold || (a == trim.threshold && index < trim.cut) ? t : 0.0f;
}

CM_HD float sign_of(float x) { return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f); }

// Step 2: the elected sign of an entry whose K trimmed values sum to `total`: the sign of the sum, or where the sum
// is exactly 0 the scope's majority sign (+1 or -1).
CM_HD float ties_elect(float total, float majority) { return total > 0.0f ? 1.0f : (total < 0.0f ? -1.0f : majority); }

// Whether a trimmed value joins the elected sign gamma (+-1): nonzero and of that sign. A product with gamma (so
// exact), not && and ==, so that the CPU loops vectorise.
CM_HD bool ties_agrees(float v, float gamma) { return v * gamma > 0.0f; }

// Steps 2-3 over the K trimmed values of one element: the sum of the nonzero values of the elected sign, divided
// by their count for disjoint Mean (0 when none agrees).
CM_HD float ties_combine(const float* v, int K, float majority, TiesDisjoint disjoint) {
  float total = 0.0f;
  for (int k = 0; k < K; ++k) total += v[k];
  const float gamma = ties_elect(total, majority);
  float sum = 0.0f;
  int count = 0;
  for (int k = 0; k < K; ++k) {
    if (ties_agrees(v[k], gamma)) {
      sum += v[k];
      ++count;
    }
  }
  return disjoint == TiesDisjoint::Mean ? sum / static_cast<float>(count > 1 ? count : 1) : sum;
}

// ---- DARE -----------------------------------------------------------------------------------------
// m * T / (1 - p): a kept entry is rescaled, a dropped one is 0.
CM_HD float dare_value(float t, bool keep, float one_minus_p) { return keep ? t / one_minus_p : 0.0f; }

// ---- PCB ------------------------------------------------------------------------------------------
// Scalars of task k over its scope, computed in prepare() (scope model) or per unit (scope tensor).
struct PcbTaskStats {
  float lo = 0, hi = 0;        // clamp bounds: sorted |T_k| at floor(d*1e-4) and floor(d*(1-1e-4))-1
  float a_min = 0, a_max = 0;  // min and max of a_k = clamp(|T_k|, lo, hi)
  float q = 0;                 // s_k at sorted position floor(d*(1-ratio))
  float s_min = 0, s_max = 0;  // min and max of s_k
};

// (v - min) / (max - min), 0 where max = min.
CM_HD float pcb_minmax(float v, float vmin, float vmax) {
  return vmax == vmin ? 0.0f : (v - vmin) / (vmax - vmin);
}

// a_k = clamp(|T_k|, lo, hi), as numpy.clip: min(max(x, lo), hi).
CM_HD float pcb_clamp(float t, float lo, float hi) { return fminf(fmaxf(fabsf(t), lo), hi); }

// intra_k = exp(K * minmax(a_k)^2): large where task k's own entry is large.
CM_HD float pcb_intra(float t, const PcbTaskStats& st, float K) {
  const float m = pcb_minmax(pcb_clamp(t, st.lo, st.hi), st.a_min, st.a_max);
  return expf(K * m * m);
}

// inter_k = tanh(T_k * sum_j T_j): positive where task k agrees with the sum of all tasks.
CM_HD float pcb_inter(float t, float sum_t) { return tanhf(t * sum_t); }

// s_k = intra_k * inter_k.
CM_HD float pcb_score(float t, float sum_t, const PcbTaskStats& st, float K) {
  return pcb_intra(t, st, K) * pcb_inter(t, sum_t);
}

CM_HD float sum_of(const float* v, int K) {
  float s = 0.0f;
  for (int k = 0; k < K; ++k) s += v[k];
  return s;
}

// tau of one element from its K task-vector values: sum_k Tc_k * scale_k / max(sum_k scale_k, 1e-12),
// with scale_k = minmax(max(s_k, q_k)) over the scope; that min and max are max(s_min, q) and max(s_max, q)
// exactly, because x -> max(x, q) is monotone.
CM_HD float pcb_tau(const float* t, int K, const PcbTaskStats* st) {
  const float sum_t = sum_of(t, K);
  float num = 0.0f, den = 0.0f;
  for (int k = 0; k < K; ++k) {
    const float s = pcb_score(t[k], sum_t, st[k], static_cast<float>(K));
    const float scale = pcb_minmax(fmaxf(s, st[k].q), fmaxf(st[k].s_min, st[k].q), fmaxf(st[k].s_max, st[k].q));
    num += sign_of(t[k]) * pcb_clamp(t[k], st[k].lo, st[k].hi) * scale;
    den += scale;
  }
  return num / fmaxf(den, 1e-12f);
}

}  // namespace cm
