#!/usr/bin/env python3
"""The demo's whole pipeline on one setting per method (scripts/demo.py --smoke): the floor and ceiling rows
of its table must be the accuracies torch measured when the zoo was built (data/zoo/expert_accuracy.json),
each method row must be the test score the sweep gave the setting it chose, and both plots must be PNG files.
(That a sweep's scores are those of separate runs is tests/mpi/sweep_resume.py's to check.)

  demo_smoke.py CATMERGE_BINARY"""
import json
import os
import subprocess
import sys
import tempfile

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(SOURCE, "scripts"))
sys.path.insert(0, os.path.join(SOURCE, "tests"))
import demo  # noqa: E402  (its method labels, in table order)
from checks import Checks  # noqa: E402


def main():
    with open(os.path.join(SOURCE, "data", "zoo", "expert_accuracy.json")) as f:
        torch_acc = json.load(f)
    tasks = torch_acc["tasks"]
    check = Checks()
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run([sys.executable, os.path.join(SOURCE, "scripts", "demo.py"), "--smoke", "--out", out],
                              env=dict(os.environ, CATMERGE=sys.argv[1]), capture_output=True, text=True,
                              timeout=600)
        if proc.returncode != 0:
            sys.exit(f"demo.py --smoke failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        with open(os.path.join(out, "results.json")) as f:
            rows = {r["method"]: r for r in json.load(f)["rows"]}
        labels = list(demo.LABEL.values())
        check(list(rows) == ["Pre-trained (floor)"] + labels + ["Individual experts (ceiling)"], f"rows {list(rows)}")
        for t in tasks:
            for row, key in (("Pre-trained (floor)", "base"), ("Individual experts (ceiling)", "expert")):
                got, want = rows[row]["accuracy"][t], 100 * torch_acc["accuracy"][t]["test"][key]
                check(abs(got - want) < 1e-9, f"{row} on {t}: {got}, torch {want}")
        with open(os.path.join(out, "sweep", "results.json")) as f:
            tested = {t["method"]: t for t in json.load(f)["test"]}
        for method, label in demo.LABEL.items():
            check(tested[method]["average"] == rows[label]["average"], f"{label}: table and the sweep's test score differ")
        for png in ("accuracy.png", "alpha.png"):
            with open(os.path.join(out, png), "rb") as f:
                check(f.read(8) == b"\x89PNG\r\n\x1a\n", f"{png} is not a PNG")
    check.finish()


if __name__ == "__main__":
    main()
