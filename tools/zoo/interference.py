#!/usr/bin/env python3
"""Where the zoo's tasks interfere (docs/RESULTS.md quotes it). Validation split only.

1. Scaling alone: each task vector on its own, theta_0 + alpha T_k, scored on task k. The gap between this and
   task arithmetic at the same alpha is what the other seven task vectors cost (interference); the gap
   between this and the expert is what scaling down costs.
2. By role: task arithmetic at alpha with the task vectors of one tensor role (METHODS.md: linear, norm_scale,
   shift, other = patch, position and class embeddings) left out, and with one role raised from alpha/2 to
   alpha: which part of the summed task vector does the damage.

Models are written as HF folders under a temporary directory and scored with `catmerge eval`.

    python3 tools/zoo/interference.py [--catmerge build/catmerge] [--alpha 0.3]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from safetensors.numpy import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
import arch  # noqa: E402

ZOO = os.path.join(ROOT, "data", "zoo")
CONFIG = os.path.join(ROOT, "configs", "zoo.yaml")
ROLES = [arch.LINEAR, arch.NORM, arch.SHIFT, arch.OTHER]


class Scorer:
    def __init__(self, catmerge, tmp):
        self.catmerge, self.tmp, self.count = catmerge, tmp, 0
        base = load_file(os.path.join(ZOO, "base", "model.safetensors"))
        self.base = {n: v.astype(np.float32) for n, v in base.items()}

    def score(self, state, tasks):
        """Validation accuracy (%) per task of the model `state`."""
        self.count += 1
        folder = os.path.join(self.tmp, f"m{self.count}")
        os.makedirs(folder)
        save_file(state, os.path.join(folder, "model.safetensors"))
        shutil.copy(os.path.join(ZOO, "base", "config.json"), folder)
        prefix = os.path.join(self.tmp, f"m{self.count}.val")
        args = [self.catmerge, "eval", CONFIG, "--model", folder, "--split", "val", "--out", prefix,
                "--set", "eval.tasks=[" + ",".join(tasks) + "]"]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        with open(prefix + ".json") as f:
            return {t["task"]: t["accuracy"] for t in json.load(f)["tasks"]}


def mean(scores):
    return sum(scores.values()) / len(scores)


def role_of(name):
    return arch.classify(name, "clip_vit")[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catmerge", default=os.path.join(ROOT, "build", "catmerge"))
    ap.add_argument("--alpha", type=float, default=0.3)
    args = ap.parse_args()
    with open(os.path.join(ZOO, "expert_accuracy.json")) as f:
        acc = json.load(f)
    tasks = acc["tasks"]
    with tempfile.TemporaryDirectory() as tmp:
        s = Scorer(args.catmerge, tmp)
        T = []
        for t in tasks:
            e = load_file(os.path.join(ZOO, "experts", t, "model.safetensors"))
            T.append({n: e[n].astype(np.float32) - b for n, b in s.base.items()})

        def merged(alpha_of):
            return {n: b + np.float32(alpha_of(n)) * sum(tv[n] for tv in T) for n, b in s.base.items()}

        print(f"validation accuracy (%), average over {len(tasks)} tasks")
        experts = {t: 100 * acc["accuracy"][t]["val"]["expert"] for t in tasks}
        print(f"  experts (alpha = 1, each alone): {mean(experts):.2f}")
        for alpha in sorted({args.alpha / 2, args.alpha}):
            alone = {t: s.score({n: b + np.float32(alpha) * T[k][n] for n, b in s.base.items()}, [t])[t]
                     for k, t in enumerate(tasks)}
            together = s.score(merged(lambda n: alpha), tasks)
            print(f"  alpha {alpha:g}: each task vector alone {mean(alone):.2f}, task arithmetic {mean(together):.2f}")
        alpha = args.alpha
        for r in ROLES:
            without = s.score(merged(lambda n: 0.0 if role_of(n) == r else alpha), tasks)
            raised = s.score(merged(lambda n: alpha if role_of(n) == r else alpha / 2), tasks)
            print(f"  task arithmetic {alpha:g} without the {r:10s} task vectors: {mean(without):.2f};"
                  f"  only {r} at {alpha:g}, the rest at {alpha / 2:g}: {mean(raised):.2f}")


if __name__ == "__main__":
    main()
