#!/usr/bin/env python3
"""The demo's whole pipeline on one setting per grid (scripts/demo.py --smoke), for every zoo: the floor and
ceiling rows of each table must be the accuracies torch measured when the zoo was built, each method row
must be the test score the sweep gave the setting it chose, and both plots must be PNG files. (That a
sweep's scores are those of separate runs is tests/mpi/sweep_resume.py's to check.)

  demo_smoke.py CATMERGE_BINARY"""
import json
import os
import subprocess
import sys
import tempfile

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(SOURCE, "scripts"))
sys.path.insert(0, os.path.join(SOURCE, "tests"))
import demo  # noqa: E402  (its zoos and grid labels, in table order)
from checks import Checks  # noqa: E402

FLOOR, CEILING = "Pre-trained (floor)", "Individual experts (ceiling)"


def torch_accuracy(zoo):
    """{row: {task: test accuracy in %}} for the floor and ceiling rows, as the zoo's build measured them."""
    if zoo.name == "vision":
        with open(os.path.join(SOURCE, "data", "zoo", "expert_accuracy.json")) as f:
            acc = json.load(f)["accuracy"]
        return {row: {t: 100 * a["test"][key] for t, a in acc.items()}
                for row, key in ((FLOOR, "base"), (CEILING, "expert"))}
    raise SystemExit(f"demo_smoke: no torch accuracies known for zoo {zoo.name}")


def main():
    check = Checks()
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run([sys.executable, os.path.join(SOURCE, "scripts", "demo.py"), "--smoke", "--out", out],
                              env=dict(os.environ, CATMERGE=sys.argv[1]), capture_output=True, text=True,
                              timeout=900)
        if proc.returncode != 0:
            sys.exit(f"demo.py --smoke failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        for zoo in demo.ZOOS:
            folder = os.path.join(out, zoo.name)
            with open(os.path.join(folder, "results.json")) as f:
                rows = {r["method"]: r for r in json.load(f)["rows"]}
            labels = list(demo.LABEL.values())
            check(list(rows) == [FLOOR] + labels + [CEILING], f"{zoo.name}: rows {list(rows)}")
            for row, want in torch_accuracy(zoo).items():
                for t, w in want.items():
                    got = rows[row]["accuracy"][t]
                    check(abs(got - w) < 1e-9, f"{zoo.name}: {row} on {t}: {got}, torch {w}")
            with open(os.path.join(folder, "sweep", "results.json")) as f:
                tested = {t["name"]: t for t in json.load(f)["test"]}
            for name, label in demo.LABEL.items():
                check(tested[name]["average"] == rows[label]["average"],
                      f"{zoo.name}: {label}: table and the sweep's test score differ")
            for png in ("accuracy.png", "alpha.png"):
                with open(os.path.join(folder, png), "rb") as f:
                    check(f.read(8) == b"\x89PNG\r\n\x1a\n", f"{zoo.name}: {png} is not a PNG")
    check.finish()


if __name__ == "__main__":
    main()
