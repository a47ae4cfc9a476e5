#!/usr/bin/env python3
"""The measurements of bench/ties_mergekit.sh on its outputs in WORK_DIR (float32 merges of the bf16 set, alpha /
lambda 0.3, density 0.2): per task, the fraction of entries whose trimmed task vector is nonzero, from the
single-expert merges (with K = 1 the merge is theta_0 + 0.3 That_k: an entry moved from the base is one kept), for
catmerge (scope tensor and model), mergekit, and what METHODS.md's old rule (every entry tied at the threshold kept)
would keep; then the difference of the K-expert merges of catmerge (scope tensor) and mergekit, and its sources:
  - tie order: the entries one tool keeps and the other does not (both keep exactly k per tensor; catmerge
    gives ties to the lower flat index, mergekit to torch.argsort's order);
  - zero sums: entries whose trimmed values sum to exactly 0 with some nonzero, where catmerge elects the
    tensor's majority sign and mergekit +1;
  - the rest: mergekit elects on the float32 sum of 0.3 That_k, whose rounding can flip a sum that is 0 or nearly,
    and float32 rounding (mergekit sums 0.3 That_k and divides by 0.3 count; catmerge sums That_k).
Steps 2-4 are recombined from the task vectors as mergekit trimmed them (its kept entries, from its single-expert
merges) with the reference's TIES steps (tools/reference/methods.py), once with the majority sign and once with
+1, to split the difference.
Needs numpy and h5py (/usr/bin/python3).

  bench/ties_mergekit.py WORK_DIR K
"""
import argparse
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tools", "reference"))
from compare_outputs import open_any  # noqa: E402
from methods import majority_sign, ties_elect_combine, ties_signs  # noqa: E402

ALPHA = np.float32(0.3)


def read(path):
    names, get = open_any(path)
    return {n: get(n)[1] for n in names}


def old_rule_kept(T, density):
    """METHODS.md before the change: keep |T| >= the value at sorted position d - floor(d * density) - 1."""
    a = np.abs(T.reshape(-1))
    position = a.size - math.floor(a.size * density) - 1
    if position < 0:
        return a != 0
    return (a >= np.partition(a, position)[position]) & (a != 0)


def kept_mask(out, base):
    """Where That_k is nonzero, from a single-expert merge theta_0 + 0.3 That_k (float32 output): the entries that
    moved (a bf16 task vector entry is at least one bf16 spacing of the base, far above float32 rounding)."""
    return {n: out[n] != base[n] for n in base}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work")
    ap.add_argument("experts", type=int)
    a = ap.parse_args()
    w, K = a.work, a.experts
    base = read(os.path.join(w, "base"))
    T = [{n: (v - base[n]).astype(np.float32) for n, v in read(os.path.join(w, f"expert{k}")).items()} for k in range(K)]
    total = sum(v.size for v in base.values())
    print(f"ties_mergekit: {len(base)} tensors, {total / 1e6:.2f} M entries per task, K = {K}, density 0.2")

    kept = {"catmerge scope tensor": [], "catmerge scope model": [], "mergekit": [], "old rule (tensor)": []}
    cm_kept, mk_kept = [], []
    for k in range(K):
        cm_t = kept_mask(read(os.path.join(w, f"cm-{k}-tensor.h5")), base)
        cm_m = kept_mask(read(os.path.join(w, f"cm-{k}-model.h5")), base)
        mk = kept_mask(read(os.path.join(w, f"mk-{k}")), base)
        cm_kept.append(cm_t)
        mk_kept.append(mk)
        kept["catmerge scope tensor"].append(sum(int(np.count_nonzero(v)) for v in cm_t.values()) / total)
        kept["catmerge scope model"].append(sum(int(np.count_nonzero(v)) for v in cm_m.values()) / total)
        kept["mergekit"].append(sum(int(np.count_nonzero(v)) for v in mk.values()) / total)
        kept["old rule (tensor)"].append(sum(int(old_rule_kept(T[k][n], 0.2).sum()) for n in base) / total)
    print("nonzero fraction of each task's trimmed task vector:")
    for label, fractions in kept.items():
        print(f"  {label:<24} " + "  ".join(f"{f:.4f}" for f in fractions))
    zeros = [sum(int(np.count_nonzero(v == 0)) for v in t.values()) / total for t in T]
    print("  (entries whose task vector is exactly 0: " + "  ".join(f"{z:.4f}" for z in zeros) + ")")

    cm = read(os.path.join(w, "cm-all-tensor.h5"))
    mk = read(os.path.join(w, "mk-all"))
    names = sorted(base)
    diff = {n: np.abs(cm[n].astype(np.float64) - mk[n]) for n in names}
    worst = max(names, key=lambda n: float(diff[n].max()) / float(np.abs(mk[n]).max()))
    differing = sum(int(np.count_nonzero(d)) for d in diff.values())
    print(f"catmerge (scope tensor) vs mergekit, {K} experts: max |diff| {max(float(d.max()) for d in diff.values()):.3g}, "
          f"mean |diff| {sum(float(d.sum()) for d in diff.values()) / total:.3g}, max relative "
          f"{float(diff[worst].max()) / float(np.abs(mk[worst]).max()):.3g} ({worst}), {differing} entries "
          f"({differing / total:.4%}) differ")
    tie_order = sum(int(np.count_nonzero(cm_kept[k][n] != mk_kept[k][n])) for k in range(K) for n in names)
    print(f"  tie order: {tie_order} (task, entry) pairs kept by one tool only ({tie_order / (K * total):.4%})")

    # Steps 2-4 on mergekit's own trimmed vectors, per tensor (scope tensor): majority sign, and +1.
    cancelled = flipped = weighted_flips = 0
    worst_majority = worst_plus = worst_rest = 0.0
    differ_majority = differ_plus = 0
    for n in names:
        that = [np.where(mk_kept[k][n], T[k][n], np.float32(0)).reshape(-1) for k in range(K)]
        b = base[n].reshape(-1)
        signs = ties_signs(that)
        majority = majority_sign([signs])
        zero = (signs == 0) & np.any([t != 0 for t in that], axis=0)
        cancelled += int(zero.sum())
        flipped += int(zero.sum()) if majority < 0 else 0
        got = mk[n].reshape(-1).astype(np.float64)
        # mergekit elects on the sum of the weighted values 0.3 That_k (+ where it is >= 0), whose rounding can give
        # another sign than the sum of the That_k where that is 0 or nearly.
        weighted = np.zeros_like(b)
        for t in that:
            weighted = (weighted + ALPHA * t).astype(np.float32)
        flips = np.where(weighted >= 0, 1, -1) != np.where(signs == 0, 1, signs)
        weighted_flips += int(flips.sum())
        for rule, sign in (("majority", majority), ("plus", 1)):
            d = np.abs(ties_elect_combine(b, that, ALPHA, sign, "mean").astype(np.float64) - got)
            if rule == "majority":
                worst_majority = max(worst_majority, float(d.max()))
                differ_majority += int(np.count_nonzero(d))
            else:
                worst_plus = max(worst_plus, float(d.max()))
                differ_plus += int(np.count_nonzero(d))
                worst_rest = max(worst_rest, float(d[~flips].max(initial=0.0)))
    print(f"  zero sums: {cancelled} entries with nonzero trimmed values sum to 0, {flipped} of them in tensors "
          f"whose majority sign is - (catmerge elects -, mergekit +)")
    print(f"  mergekit's trimmed vectors recombined: with the majority sign max |diff| {worst_majority:.3g} "
          f"({differ_majority} entries), with +1 (mergekit's rule) {worst_plus:.3g} ({differ_plus} entries); "
          f"{weighted_flips} entries where mergekit's weighted sum elects another sign, the rest within "
          f"{worst_rest:.3g} (float32 rounding)")


if __name__ == "__main__":
    main()
