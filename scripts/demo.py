#!/usr/bin/env python3
"""The zoo demo (run by scripts/demo.sh after the build; Python standard library only).

Merges the committed expert zoo (configs/zoo.yaml, data/zoo/) with weight averaging, task arithmetic, TIES,
PCB, RegMean and CAT in one `catmerge sweep` job: the grid is the configuration's `sweep` section, each
method's hyperparameters are chosen on the validation split (best average validation accuracy; on a tie, the
first setting in grid order) and the chosen merge is scored once on the test split, all in that one job. The
table adds the pre-trained backbone with each task's head (floor) and each expert on its own task (ceiling),
both from `catmerge eval`. Writes into --out (default out/demo/): sweep/ (the sweep's folder: results.csv,
results.json, alpha-<method>.png and its journal), grid.csv (every validation result), results.csv,
results.md, results.json, accuracy.png (test accuracy per task and method), alpha.png (validation accuracy
against alpha for the methods that have one), and selected.h5 (the sweep's overall choice). --smoke runs only
the first setting of each grid (tests/e2e/demo_smoke.py).
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

# --smoke: the first setting of each grid of configs/zoo.yaml's sweep section.
SMOKE_GRIDS = ("[{method: weight_average}, {method: task_arithmetic, alpha: 0.05},"
               " {method: ties, density: 0.1, alpha: 0.2}, {method: pcb, ratio: 0.1, alpha: 0.3},"
               " {method: regmean, reduction: 0.5}, {method: cat, lambda: 1.0, c: 3, alpha: 0.1}]")
LABEL = {"weight_average": "Weight averaging", "task_arithmetic": "Task arithmetic", "ties": "TIES",
         "pcb": "PCB", "regmean": "RegMean", "cat": "CAT"}


def run(args, what, echo=False):
    t = time.time()
    p = subprocess.Popen([CATMERGE] + args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in p.stdout:
        lines.append(line)
        if echo:
            print("  " + line.rstrip().removeprefix("catmerge sweep: "), flush=True)
    err = p.stderr.read()
    if p.wait() != 0:
        sys.stderr.write("".join(lines) + err)
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


def describe(point):
    """A sweep point's setting as the table shows it, in its grid's key order."""
    return point["setting"].replace(" ", ", ")


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
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(os.path.join(out, "eval"))
    tasks = json.load(open(os.path.join(ROOT, "data", "zoo", "expert_accuracy.json")))["tasks"]

    sweep = search(out, args.smoke)
    rows = test_rows(sweep, tasks, out)
    write_tables(rows, tasks, out)
    plot(rows, tasks, out)
    plot_alpha(sweep["points"], out)
    print(f"\ndemo: wrote {os.path.relpath(out)}/results.md, results.csv, grid.csv, accuracy.png, alpha.png "
          f"in {time.time() - start:.0f} s")


def search(out, smoke):
    """The sweep: every setting of the grid merged and scored on the validation split, each method's choice
    scored on the test split, in one catmerge job. Writes grid.csv; returns the sweep's results.json."""
    folder = os.path.join(out, "sweep")
    sets = ["--set", f"sweep.dir={folder}", "--set", f"output.path={os.path.join(out, 'selected.h5')}"]
    if smoke:
        sets += ["--set", f"sweep.grids={SMOKE_GRIDS}"]
    print("demo: choosing hyperparameters on the validation split (one catmerge sweep)")
    seconds = run(["sweep", CONFIG] + sets, "the sweep", echo=True)
    with open(os.path.join(folder, "results.json")) as f:
        sweep = json.load(f)
    evals = [p["eval_seconds"] for p in sweep["points"]]
    gflops = [p["gflops"] for p in sweep["points"]]
    print(f"demo: the sweep took {seconds:.1f} s for {len(evals)} points (eval {sum(evals):.1f} s in all, "
          f"median {sorted(gflops)[len(gflops) // 2]:.0f} GFLOP/s)")
    with open(os.path.join(out, "grid.csv"), "w", newline="") as f:
        w = csv.writer(f)
        tasks = [t["task"] for t in sweep["points"][0]["tasks"]]
        w.writerow(["method", "setting"] + tasks + ["average", "merge_s", "eval_s"])
        for p in sweep["points"]:
            w.writerow([p["method"], describe(p)] + [f"{t['accuracy']:.4f}" for t in p["tasks"]]
                       + [f"{p['average']:.4f}", round(p["merge_seconds"], 2), round(p["eval_seconds"], 2)])
    return sweep


def test_rows(sweep, tasks, out):
    """The table on the test split: [(name, chosen setting, {task: accuracy}, average)], floor first, then each
    method's chosen merge (scored on test by the sweep), then the experts each on its own task (ceiling)."""
    print("demo: evaluating the floor and the ceiling on the test split")
    zoo = os.path.join(ROOT, "data", "zoo")
    acc, avg, _ = evaluate(os.path.join(zoo, "base"), "test", os.path.join(out, "eval", "base.test"))
    rows = [("Pre-trained (floor)", "-", acc, avg)]
    for t in sweep["test"]:
        rows.append((LABEL[t["method"]], describe(t), {a["task"]: a["accuracy"] for a in t["tasks"]},
                     t["average"]))
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


def plot_alpha(points, out):
    """Validation average against alpha, one line per curve: how fast each method degrades as alpha grows."""
    plots = []
    for i, (label, method, fixed, colour) in enumerate(CURVES):
        data = os.path.join(out, f"alpha-{i}.dat")
        with open(data, "w") as f:
            for p in points:
                params = p["params"]
                if p["method"] == method and all(params.get(k) == v for k, v in fixed.items()):
                    f.write(f"{params['alpha']} {p['average']:.3f}\n")
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
