#!/usr/bin/env python3
"""The zoo demo (run by scripts/demo.sh after the build; Python standard library only).

Merges the committed expert zoo (configs/zoo.yaml, data/zoo/) with weight averaging, task arithmetic, TIES,
PCB, RegMean and CAT. Each method's hyperparameters are chosen on the validation split from the small grid
below (best average validation accuracy; on a tie, the first setting in grid order); the chosen merge is then
evaluated once on the test split. The table has the pre-trained backbone with each task's head (floor), each
method, and each expert on its own task (ceiling). Writes into --out (default out/demo/): grid.csv (every
validation result), results.csv, results.md, results.json, accuracy.png (test accuracy per task and method),
alpha.png (validation accuracy against alpha for the methods that have one), and the merged models of the
chosen settings. --smoke runs only the first setting of each grid (tests/e2e/demo_smoke.py).
"""
import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CATMERGE = os.environ.get("CATMERGE", os.path.join(ROOT, "build", "catmerge"))
CONFIG = os.path.join(ROOT, "configs", "zoo.yaml")

# The grid (docs/RESULTS.md). Every other hyperparameter keeps its documented default (README).
GRID = [
    ("weight_average", [{}]),
    ("task_arithmetic", [{"alpha": a} for a in (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)]),
    ("ties", [{"density": d, "alpha": a} for d in (0.1, 0.2) for a in (0.2, 0.3, 0.5, 0.7, 1.0)]),
    ("pcb", [{"ratio": r, "alpha": a} for r in (0.1, 0.2) for a in (0.3, 0.5, 0.7, 1.0)]),
    ("regmean", [{"reduction": r} for r in (0.5, 0.8, 0.95)]),
    ("cat", [{"alpha": a, "lambda": lam, "c": c} for lam in (1.0, 5.0) for c in (3, 8)
             for a in (0.1, 0.15, 0.2, 0.3, 0.4, 0.5)]),
]
LABEL = {"weight_average": "Weight averaging", "task_arithmetic": "Task arithmetic", "ties": "TIES",
         "pcb": "PCB", "regmean": "RegMean", "cat": "CAT"}


def run(args, what):
    t = time.time()
    p = subprocess.run([CATMERGE] + args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stdout + p.stderr)
        sys.exit(f"demo: {what} failed (exit {p.returncode})")
    return time.time() - t


def evaluate(model, split, prefix, tasks=None):
    args = ["eval", CONFIG, "--model", model, "--split", split, "--out", prefix]
    for t in tasks or []:
        args += ["--task", t]
    seconds = run(args, f"eval of {model}")
    with open(prefix + ".json") as f:
        j = json.load(f)
    return {t["task"]: t["accuracy"] for t in j["tasks"]}, j["average"], seconds


def merge(method, params, path):
    sets = ["--set", f"method=" + json.dumps({"name": method, **params}, separators=(",", ":")),
            "--set", f"output.path={path}"]
    return run(["run", CONFIG] + sets, f"merge {method} {params}")


def describe(params):
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "demo"), help="output folder (default out/demo)")
    ap.add_argument("--smoke", action="store_true",
                    help="only the first setting of each grid (a quick check of the whole pipeline)")
    args = ap.parse_args()
    if not os.access(CATMERGE, os.X_OK):
        sys.exit(f"demo: {CATMERGE} is not built (scripts/build.sh)")
    start = time.time()
    out = args.out
    grid = [(method, settings[:1]) for method, settings in GRID] if args.smoke else GRID
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(os.path.join(out, "eval"))
    tasks = json.load(open(os.path.join(ROOT, "data", "zoo", "expert_accuracy.json")))["tasks"]

    scored, chosen = search(grid, tasks, out)
    rows = test_rows(chosen, tasks, out)
    write_tables(rows, tasks, out)
    plot(rows, tasks, out)
    plot_alpha(scored, out)
    print(f"\ndemo: wrote {os.path.relpath(out)}/results.md, results.csv, grid.csv, accuracy.png, alpha.png "
          f"in {time.time() - start:.0f} s")


def search(grid, tasks, out):
    """Every setting of the grid merged and scored on the validation split; grid.csv. Returns the scores
    [(method, params, average)] and, per method, its best setting and merged file (the others are deleted)."""
    print(f"demo: choosing hyperparameters on the validation split ({sum(len(g) for _, g in grid)} merges)")
    csv_rows, scored, chosen = [], [], {}
    for method, settings in grid:
        best = None
        for i, params in enumerate(settings):
            path = os.path.join(out, f"{method}-{i}.h5")
            t_merge = merge(method, params, path)
            acc, avg, t_eval = evaluate(path, "val", os.path.join(out, "eval", f"{method}-{i}.val"))
            csv_rows.append({"method": method, "setting": describe(params), **{t: acc[t] for t in tasks},
                             "average": avg, "merge_s": round(t_merge, 2), "eval_s": round(t_eval, 2)})
            scored.append((method, params, avg))
            print(f"  {method:16s} {describe(params):34s} val {avg:6.2f}   "
                  f"(merge {t_merge:4.1f} s, eval {t_eval:4.1f} s)")
            if best is None or avg > best[0]:
                if best is not None:
                    os.remove(best[2])
                best = (avg, params, path)
            else:
                os.remove(path)
        final = os.path.join(out, f"{method}.h5")
        os.replace(best[2], final)
        chosen[method] = (best[1], final)
    with open(os.path.join(out, "grid.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(csv_rows[0].keys()))
        w.writeheader()
        w.writerows(csv_rows)
    return scored, chosen


def test_rows(chosen, tasks, out):
    """The table on the test split: [(name, chosen setting, {task: accuracy}, average)], floor first, then each
    method's chosen merge, then the experts each on its own task (ceiling)."""
    print("demo: evaluating on the test split")
    zoo = os.path.join(ROOT, "data", "zoo")
    acc, avg, _ = evaluate(os.path.join(zoo, "base"), "test", os.path.join(out, "eval", "base.test"))
    rows = [("Pre-trained (floor)", "-", acc, avg)]
    for method, (params, path) in chosen.items():
        acc, avg, _ = evaluate(path, "test", os.path.join(out, "eval", f"{method}.test"))
        rows.append((LABEL[method], describe(params), acc, avg))
    expert = {t: evaluate(os.path.join(zoo, "experts", t), "test", os.path.join(out, "eval", f"expert-{t}.test"),
                          [t])[0][t] for t in tasks}
    rows.append(("Individual experts (ceiling)", "-", expert, sum(expert.values()) / len(tasks)))
    return rows


def write_tables(rows, tasks, out):
    """results.csv, results.md, results.json, and the table on stdout."""
    header = ["method", "chosen on val"] + tasks + ["average"]
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for name, setting, acc, avg in rows:
            w.writerow([name, setting] + [f"{acc[t]:.2f}" for t in tasks] + [f"{avg:.2f}"])
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * 2 + "---:|" * (len(tasks) + 1)]
    for name, setting, acc, avg in rows:
        md.append("| " + " | ".join([name, setting] + [f"{acc[t]:.1f}" for t in tasks] + [f"**{avg:.1f}**"]) + " |")
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"tasks": tasks, "split": "test",
                   "rows": [{"method": n, "chosen_on_val": s, "accuracy": a, "average": v} for n, s, a, v in rows]},
                  f, indent=2)
    width = max(len(r[0]) for r in rows)
    print()
    print(f"{'test accuracy (%)':{width}s} " + " ".join(f"{t[:8]:>8s}" for t in tasks) + f" {'average':>8s}")
    for name, setting, acc, avg in rows:
        print(f"{name:{width}s} " + " ".join(f"{acc[t]:8.1f}" for t in tasks) + f" {avg:8.1f}")
    print()
    for name, setting, _, _ in rows[1:-1]:
        print(f"  {name}: {setting}")


def plot(rows, tasks, out):
    data = os.path.join(out, "accuracy.dat")
    with open(data, "w") as f:
        f.write("task " + " ".join(f'"{r[0]}"' for r in rows) + "\n")
        for t in tasks + ["average"]:
            vals = [r[3] if t == "average" else r[2][t] for r in rows]
            f.write(t + " " + " ".join(f"{v:.2f}" for v in vals) + "\n")
    script = f"""
set terminal pngcairo size 1400,560 font "sans,10"
set output "{os.path.join(out, 'accuracy.png')}"
set title "Test accuracy per task: catmerge on the committed zoo (8 experts, hyperparameters chosen on validation)"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set boxwidth 0.9
set ylabel "accuracy (%)"
set yrange [0:100]
set grid ytics
set key outside right top vertical
set xtics nomirror
plot for [i=2:{len(rows) + 1}] "{data}" using i:xtic(1) title columnheader(i)
"""
    gnuplot(script)


# The curves of the alpha plot: (label, method, the other hyperparameters fixed, colour).
CURVES = [("Task arithmetic", "task_arithmetic", {}, "#1f77b4"),
          ("TIES (density 0.2)", "ties", {"density": 0.2}, "#2ca02c"),
          ("PCB (ratio 0.1)", "pcb", {"ratio": 0.1}, "#9467bd"),
          ("CAT (lambda 1, c 3)", "cat", {"lambda": 1.0, "c": 3}, "#d62728"),
          ("CAT (lambda 5, c 3)", "cat", {"lambda": 5.0, "c": 3}, "#ff7f0e")]


def plot_alpha(scored, out):
    """Validation average against alpha, one line per curve: how fast each method degrades as alpha grows."""
    plots = []
    for i, (label, method, fixed, colour) in enumerate(CURVES):
        data = os.path.join(out, f"alpha-{i}.dat")
        with open(data, "w") as f:
            for m, params, avg in scored:
                if m == method and all(params.get(k) == v for k, v in fixed.items()):
                    f.write(f"{params['alpha']} {avg:.3f}\n")
        plots.append(f'"{data}" using 1:2 with linespoints lw 2 lc rgb "{colour}" title "{label}"')
    gnuplot(f"""
set terminal pngcairo size 900,560 font "sans,10"
set output "{os.path.join(out, 'alpha.png')}"
set title "Validation accuracy against alpha (average over the zoo's tasks)"
set xlabel "alpha"
set ylabel "accuracy (%)"
set grid
set key bottom left
plot {", ".join(plots)}
""")


def gnuplot(script):
    p = subprocess.run(["gnuplot"], input=script, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        sys.exit("demo: gnuplot failed")


if __name__ == "__main__":
    main()
