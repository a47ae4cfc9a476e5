#!/usr/bin/env python3
"""The zoo under mpirun: `catmerge eval` at 3 ranks scores the base and two experts exactly as torch did
(data/zoo/expert_accuracy.json, written by tools/zoo/make_zoo.py), and a CAT merge of the zoo at 2 ranks is
byte-identical to the 1-rank merge and scores the same at 1 and 3 ranks.

  zoo_ranks.py CATMERGE_BINARY"""
import json
import os
import subprocess
import sys
import tempfile

from common import MPI_ENV, SOURCE, mpirun, tensors

CONFIG = os.path.join(SOURCE, "configs", "zoo.yaml")
ZOO = os.path.join(SOURCE, "data", "zoo")


def check(proc, what):
    if proc.returncode != 0:
        sys.exit(f"{what} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")


def evaluate(binary, ranks, model, prefix, extra=()):
    args = ["eval", CONFIG, "--model", model, "--out", prefix, "--set", "runtime.threads=1", *extra]
    if ranks == 1:
        proc = subprocess.run([binary] + args, capture_output=True, text=True, timeout=300)
    else:
        proc = mpirun(binary, ranks, args)
    check(proc, f"eval of {model} at {ranks} ranks")
    with open(prefix + ".json") as f:
        return {t["task"]: (t["images"], t["correct"]) for t in json.load(f)["tasks"]}


def main():
    binary = sys.argv[1]
    with open(os.path.join(ZOO, "expert_accuracy.json")) as f:
        torch_acc = json.load(f)
    tasks = torch_acc["tasks"]
    failures, checks = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        base = evaluate(binary, 3, os.path.join(ZOO, "base"), os.path.join(tmp, "base"))
        for task in tasks:
            images, correct = base[task]
            want = torch_acc["accuracy"][task]["test"]["base"]
            checks += 1
            if correct != round(want * images):
                failures.append(f"base on {task}: {correct}/{images}, torch {want}")
        for task in tasks[:2]:
            got = evaluate(binary, 3, os.path.join(ZOO, "experts", task), os.path.join(tmp, task), ["--task", task])
            images, correct = got[task]
            want = torch_acc["accuracy"][task]["test"]["expert"]
            checks += 1
            if correct != round(want * images):
                failures.append(f"expert {task}: {correct}/{images}, torch {want}")

        merged = {}
        for ranks in (1, 2):
            out = os.path.join(tmp, f"cat-{ranks}.h5")
            args = ["run", CONFIG, "--set", f"output.path={out}", "--set", "runtime.threads=1"]
            proc = subprocess.run([binary] + args, capture_output=True, text=True, timeout=300) if ranks == 1 \
                else mpirun(binary, ranks, args)
            check(proc, f"CAT merge at {ranks} ranks")
            merged[ranks] = tensors(out)
        checks += 2
        for name, (raw, _) in merged[1].items():
            if merged[2][name][0] != raw:
                failures.append(f"CAT merge: {name} differs between 1 and 2 ranks")
        one = evaluate(binary, 1, os.path.join(tmp, "cat-1.h5"), os.path.join(tmp, "cat-1"), ["--split", "val"])
        three = evaluate(binary, 3, os.path.join(tmp, "cat-2.h5"), os.path.join(tmp, "cat-3"), ["--split", "val"])
        if one != three:
            failures.append(f"eval of the CAT merge: 1 rank {one}, 3 ranks {three}")
    for f in failures:
        print("FAIL:", f)
    print(f"{checks - len(failures)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
