#!/usr/bin/env python3
"""The zoo demo (run by scripts/demo.sh after the build; Python standard library only).

For each of the two committed expert zoos, the vision zoo (configs/zoo.yaml, data/zoo/: 8 small CLIP-ViT
experts trained from scratch) and the text zoo (configs/text_zoo.yaml, data/text_zoo/: 8 LoRA experts of the
real pre-trained all-MiniLM-L6-v2), one `catmerge sweep` job merges the experts with weight averaging, task
arithmetic, TIES (disjoint mean and sum), PCB, RegMean and CAT (the paper's formulas and the authors'
released code): the grid is the configuration's `sweep` section, each grid's hyperparameters are chosen on the
validation split (best average validation accuracy; on a tie, the first setting in grid order) and the chosen
merge is scored once on the test split, all in that one job. Each table adds the pre-trained backbone with
each task's head (floor) and each expert on its own task (ceiling), both from `catmerge eval`. Writes into
--out (default out/demo/), one folder per zoo: sweep/ (the sweep's folder: results.csv, results.json,
alpha-<name>.png and its journal), grid.csv (every validation result), results.csv, results.md, results.json,
accuracy.png (test accuracy per task and method), alpha.png (validation accuracy against alpha for the
methods that have one), and selected.h5 (the sweep's overall choice). --smoke runs only the first setting of
each grid (tests/e2e/demo_smoke.py).
"""
import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from typing import NamedTuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CATMERGE = os.environ.get("CATMERGE", os.path.join(ROOT, "build", "catmerge"))

# Table labels of the sweep grids' names (configs' sweep.grids `name`, default the method), in table order.
LABEL = {"weight_average": "Weight averaging", "task_arithmetic": "Task arithmetic", "ties": "TIES (mean)",
         "ties_sum": "TIES (sum)", "pcb": "PCB", "regmean": "RegMean", "cat": "CAT (paper)",
         "cat_released": "CAT (released)"}


class Zoo(NamedTuple):
    name: str
    title: str
    config: str          # relative to ROOT
    floor: str           # the pre-trained model `catmerge eval` scores with every task's head
    expert: str          # each task's expert, {task} replaced
    smoke_grids: str     # --smoke: the first setting of each grid of the config's sweep section
    curves: list         # the alpha plot's lines: (label, grid name, the other hyperparameters fixed, colour)


ZOOS = [
    Zoo("vision", "the vision zoo (8 small CLIP-ViT experts, trained from scratch)", "configs/zoo.yaml",
        "data/zoo/base", "data/zoo/experts/{task}",
        "[{method: weight_average}, {method: task_arithmetic, alpha: 0.05},"
        " {method: ties, density: 0.1, alpha: 0.2}, {method: ties, name: ties_sum, disjoint: sum, density: 0.1, alpha: 0.2},"
        " {method: pcb, ratio: 0.1, alpha: 0.3}, {method: regmean, reduction: 0.5},"
        " {method: cat, lambda: 1.0, c: 3, alpha: 0.1},"
        " {method: cat, name: cat_released, variant: released, lambda: 1.0, c: 3, alpha: 0.1}]",
        [("Task arithmetic", "task_arithmetic", {}, "#1f77b4"),
         ("TIES mean (density 0.2)", "ties", {"density": 0.2}, "#2ca02c"),
         ("TIES sum (density 0.2)", "ties_sum", {"density": 0.2}, "#8c564b"),
         ("PCB (ratio 0.1)", "pcb", {"ratio": 0.1}, "#9467bd"),
         ("CAT paper (lambda 5, c 3)", "cat", {"lambda": 5.0, "c": 3}, "#ff7f0e"),
         ("CAT released (lambda 5, c 3)", "cat_released", {"lambda": 5.0, "c": 3}, "#d62728")]),
]


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


def evaluate(zoo, model, split, prefix, tasks=None):
    args = ["eval", os.path.join(ROOT, zoo.config), "--model", model, "--split", split, "--out", prefix]
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
    ap.add_argument("--zoo", action="append", choices=[z.name for z in ZOOS],
                    help="only this zoo (repeatable; default every zoo)")
    args = ap.parse_args()
    if not os.access(CATMERGE, os.X_OK):
        sys.exit(f"demo: {CATMERGE} is not built (scripts/build.sh)")
    start = time.time()
    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    tables = []
    for zoo in ZOOS:
        if args.zoo and zoo.name not in args.zoo:
            continue
        out = os.path.join(args.out, zoo.name)
        os.makedirs(os.path.join(out, "eval"))
        print(f"demo: {zoo.title}")
        sweep = search(zoo, out, args.smoke)
        tasks = [t["task"] for t in sweep["points"][0]["tasks"]]
        rows = test_rows(zoo, sweep, tasks, out)
        write_tables(rows, tasks, out)
        plot(zoo, rows, tasks, out)
        plot_alpha(zoo, sweep["points"], out)
        tables.append((zoo, rows, tasks))
    for zoo, rows, tasks in tables:
        print_table(zoo, rows, tasks)
    print(f"demo: wrote {', '.join(os.path.relpath(os.path.join(args.out, z.name)) for z, _, _ in tables)} "
          f"(results.md, results.csv, grid.csv, accuracy.png, alpha.png) in {time.time() - start:.0f} s")


def search(zoo, out, smoke):
    """The sweep: every setting of the grid merged and scored on the validation split, each grid's choice
    scored on the test split, in one catmerge job. Writes grid.csv; returns the sweep's results.json."""
    folder = os.path.join(out, "sweep")
    sets = ["--set", f"sweep.dir={folder}", "--set", f"output.path={os.path.join(out, 'selected.h5')}"]
    if smoke:
        sets += ["--set", f"sweep.grids={zoo.smoke_grids}"]
    print("demo: choosing hyperparameters on the validation split (one catmerge sweep)")
    seconds = run(["sweep", os.path.join(ROOT, zoo.config)] + sets, "the sweep", echo=True)
    with open(os.path.join(folder, "results.json")) as f:
        sweep = json.load(f)
    evals = [p["eval_seconds"] for p in sweep["points"]]
    gflops = [p["gflops"] for p in sweep["points"]]
    print(f"demo: the sweep took {seconds:.1f} s for {len(evals)} points (eval {sum(evals):.1f} s in all, "
          f"median {sorted(gflops)[len(gflops) // 2]:.0f} GFLOP/s)")
    with open(os.path.join(out, "grid.csv"), "w", newline="") as f:
        w = csv.writer(f)
        tasks = [t["task"] for t in sweep["points"][0]["tasks"]]
        w.writerow(["name", "method", "setting"] + tasks + ["average", "merge_s", "eval_s"])
        for p in sweep["points"]:
            w.writerow([p["name"], p["method"], describe(p)] + [f"{t['accuracy']:.4f}" for t in p["tasks"]]
                       + [f"{p['average']:.4f}", round(p["merge_seconds"], 2), round(p["eval_seconds"], 2)])
    return sweep


def test_rows(zoo, sweep, tasks, out):
    """The table on the test split: [(name, chosen setting, {task: accuracy}, average)], floor first, then each
    grid's chosen merge (scored on test by the sweep) in LABEL's order, then the experts each on its own task
    (ceiling)."""
    print("demo: evaluating the floor and the ceiling on the test split")
    acc, avg, _ = evaluate(zoo, os.path.join(ROOT, zoo.floor), "test", os.path.join(out, "eval", "base.test"))
    rows = [("Pre-trained (floor)", "-", acc, avg)]
    tested = {t["name"]: t for t in sweep["test"]}
    for name, label in LABEL.items():
        if name in tested:
            t = tested[name]
            rows.append((label, describe(t), {a["task"]: a["accuracy"] for a in t["tasks"]}, t["average"]))
    expert = {t: evaluate(zoo, os.path.join(ROOT, zoo.expert.format(task=t)), "test",
                          os.path.join(out, "eval", f"expert-{t}.test"), [t])[0][t] for t in tasks}
    rows.append(("Individual experts (ceiling)", "-", expert, sum(expert.values()) / len(tasks)))
    return rows


def write_tables(rows, tasks, out):
    """results.csv, results.md, results.json."""
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


def print_table(zoo, rows, tasks):
    """The table on stdout, with the share of the floor-to-ceiling gap each merge recovers."""
    width = max(len(r[0]) for r in rows)
    floor, ceiling = rows[0][3], rows[-1][3]
    print(f"\n{zoo.title}: test accuracy (%)")
    print(f"{'':{width}s} " + " ".join(f"{t[:8]:>8s}" for t in tasks) + f" {'average':>8s} {'of gap':>7s}")
    for name, setting, acc, avg in rows:
        gap = f"{100 * (avg - floor) / (ceiling - floor):6.0f}%" if ceiling != floor else ""
        print(f"{name:{width}s} " + " ".join(f"{acc[t]:8.1f}" for t in tasks) + f" {avg:8.1f} {gap:>7s}")
    for name, setting, _, _ in rows[1:-1]:
        print(f"  {name}: {setting}")


def plot(zoo, rows, tasks, out):
    data = os.path.join(out, "accuracy.dat")
    with open(data, "w") as f:
        f.write("task " + " ".join(f'"{r[0]}"' for r in rows) + "\n")
        for t in tasks + ["average"]:
            vals = [r[3] if t == "average" else r[2][t] for r in rows]
            f.write(t + " " + " ".join(f"{v:.2f}" for v in vals) + "\n")
    script = f"""
set terminal pngcairo size 1400,560 font "sans,10"
set output "{os.path.join(out, 'accuracy.png')}"
set title "Test accuracy per task: catmerge on {zoo.title}, hyperparameters chosen on validation"
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


def plot_alpha(zoo, points, out):
    """Validation average against alpha, one line per curve: how fast each method degrades as alpha grows."""
    plots = []
    for i, (label, name, fixed, colour) in enumerate(zoo.curves):
        data = os.path.join(out, f"alpha-{i}.dat")
        with open(data, "w") as f:
            for p in points:
                params = p["params"]
                if p["name"] == name and all(params.get(k) == v for k, v in fixed.items()):
                    f.write(f"{params['alpha']} {p['average']:.3f}\n")
        plots.append(f'"{data}" using 1:2 with linespoints lw 2 lc rgb "{colour}" title "{label}"')
    gnuplot(f"""
set terminal pngcairo size 900,560 font "sans,10"
set output "{os.path.join(out, 'alpha.png')}"
set title "Validation accuracy against alpha on {zoo.title} (average over its tasks)"
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
