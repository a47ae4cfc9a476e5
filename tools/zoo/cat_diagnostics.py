#!/usr/bin/env python3
"""What CAT removes on the committed zoo, per lambda (docs/RESULTS.md quotes it). Uses the independent
reference (tools/reference: transformers forward, numpy CAT), not catmerge.

For the linear tensors: how many of the c requested directions per (tensor, task) have a positive
eigenvalue of G_k = sum_{i != k} T_i (S_k - lambda S_i) T_i^T (the others are left out), and which share of the
summed task vector sum_k T_k the projections remove (Frobenius norm over all linear tensors).

    python3 tools/zoo/cat_diagnostics.py [--lambdas 0.5 1 5] [--c 3] [--exemplars 8]
"""
import argparse
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
import arch  # noqa: E402
import fixtures  # noqa: E402
import methods  # noqa: E402

ZOO = os.path.join(ROOT, "data", "zoo")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lambdas", type=float, nargs="+", default=[0.5, 1.0, 5.0])
    ap.add_argument("--c", type=int, default=3)
    ap.add_argument("--exemplars", type=int, default=8)
    args = ap.parse_args()

    tasks = json.load(open(os.path.join(ZOO, "expert_accuracy.json")))["tasks"]
    case = {"model": {"arch": "clip_vit", "base": "base"},
            "experts": [{"name": t, "path": f"experts/{t}", "exemplars": f"exemplars.h5:/{t}"} for t in tasks],
            "features": {"exemplars": args.exemplars, "model": "expert"}, "method": {"name": "cat"}}
    base_all, _, cfg, is_oc = fixtures.read_model(ZOO, "base")
    base = fixtures.vision_only(base_all)
    experts = [fixtures.vision_only(fixtures.read_model(ZOO, e["path"])[0]) for e in case["experts"]]
    stats = fixtures.task_features(ZOO, case, base, experts, cfg, is_oc)
    linear = [n for n in base if arch.classify(n, "clip_vit")[0] == arch.LINEAR]
    summed = {n: sum(e[n].astype(np.float64) - base[n] for e in experts) for n in linear}
    norm = np.sqrt(sum(np.sum(v ** 2) for v in summed.values()))
    print(f"{len(tasks)} tasks, {len(linear)} linear tensors, c = {args.c}, {args.exemplars} exemplars per task")
    print("lambda  directions kept (of c per tensor and task)  share of sum_k T_k removed (linear tensors)")
    for lam in args.lambdas:
        diag = {}
        params = {"alpha": 1.0, "c": args.c, "lambda": lam}
        with np.errstate(invalid="ignore", divide="ignore"):   # the norm-mask margins divide 0 by 0
            merged = methods.cat(base, experts, params, stats, diag=diag)
        kept = [min(d["positive"], args.c) for d in diag["linear"]]
        removed = np.sqrt(sum(np.sum((summed[n] - (merged[n].astype(np.float64) - base[n])) ** 2) for n in linear))
        print(f"{lam:6g}  {sum(kept) / len(kept):5.2f} on average, none kept for {kept.count(0):3d} of {len(kept)}"
              f"         {removed / norm:6.3f}")


if __name__ == "__main__":
    main()
