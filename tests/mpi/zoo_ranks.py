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

from common import SOURCE, mpirun, tensors

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from checks import Checks  # noqa: E402

CONFIG = os.path.join(SOURCE, "configs", "zoo.yaml")
ZOO = os.path.join(SOURCE, "data", "zoo")


def must_succeed(proc, what):
    if proc.returncode != 0:
        sys.exit(f"{what} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")


def evaluate(binary, ranks, model, prefix, extra=()):
    args = ["eval", CONFIG, "--model", model, "--out", prefix, "--set", "runtime.threads=1", *extra]
    if ranks == 1:
        proc = subprocess.run([binary] + args, capture_output=True, text=True, timeout=300)
    else:
        proc = mpirun(binary, ranks, args)
    must_succeed(proc, f"eval of {model} at {ranks} ranks")
    with open(prefix + ".json") as f:
        return {t["task"]: (t["images"], t["correct"]) for t in json.load(f)["tasks"]}


def main():
    binary = sys.argv[1]
    with open(os.path.join(ZOO, "expert_accuracy.json")) as f:
        torch_acc = json.load(f)
    tasks = torch_acc["tasks"]
    check = Checks()
    with tempfile.TemporaryDirectory() as tmp:
        base = evaluate(binary, 3, os.path.join(ZOO, "base"), os.path.join(tmp, "base"))
        for task in tasks:
            images, correct = base[task]
            want = torch_acc["accuracy"][task]["test"]["base"]
            check(correct == round(want * images), f"base on {task}: {correct}/{images}, torch {want}")
        for task in tasks[:2]:
            got = evaluate(binary, 3, os.path.join(ZOO, "experts", task), os.path.join(tmp, task), ["--task", task])
            images, correct = got[task]
            want = torch_acc["accuracy"][task]["test"]["expert"]
            check(correct == round(want * images), f"expert {task}: {correct}/{images}, torch {want}")

        merged = {}
        for ranks in (1, 2):
            out = os.path.join(tmp, f"cat-{ranks}.h5")
            args = ["run", CONFIG, "--set", f"output.path={out}", "--set", "runtime.threads=1"]
            proc = subprocess.run([binary] + args, capture_output=True, text=True, timeout=300) if ranks == 1 \
                else mpirun(binary, ranks, args)
            must_succeed(proc, f"CAT merge at {ranks} ranks")
            merged[ranks] = tensors(out)
        differ = [name for name, t in merged[1].items() if merged[2][name].raw != t.raw]
        check(not differ, f"CAT merge: {differ} differ between 1 and 2 ranks")
        one = evaluate(binary, 1, os.path.join(tmp, "cat-1.h5"), os.path.join(tmp, "cat-1"), ["--split", "val"])
        three = evaluate(binary, 3, os.path.join(tmp, "cat-2.h5"), os.path.join(tmp, "cat-3"), ["--split", "val"])
        check(one == three, f"eval of the CAT merge: 1 rank {one}, 3 ranks {three}")
    check.finish()


if __name__ == "__main__":
    main()
