#!/usr/bin/env python3
"""`catmerge sweep` of the zoo over a small grid (README "Sweeps"), against independent oracles:

  1. every point's per-task correct counts (points/<i>.json) are those of a separate `catmerge run` of the point
     scored by `catmerge eval --split val`; results.csv is the table those counts, and `catmerge eval --split
     test` of each method's chosen point, make (choice and selection recomputed here); the selected point's
     model at output.path has every dataset of the separate run of that point;
  2. the sweep at 2 ranks writes a byte-identical results.csv;
  3. a sweep killed (CATMERGE_FAULT=point-scored:<n>:<signal>) after its n-th scored point and started again
     goes on from its journal and writes a byte-identical results.csv, at 1 and at 2 ranks;
  4. --part 0/2 and --part 1/2 into one folder, then --collect, write the same results.csv and selected model;
     --collect before every part ran, and --part 2/2, are refused with a one-line error;
  5. a sweep folder that holds another sweep's journal is refused with a one-line error naming sweep.json.

n and the signals are drawn at random: the seed is printed, and CATMERGE_TEST_SEED sets it.

  sweep_resume.py CATMERGE_BINARY"""
import filecmp
import glob
import itertools
import json
import os
import shutil
import sys
import tempfile

from common import SOURCE, catmerge_at, seeded_random, tensors

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from checks import Checks  # noqa: E402

CONFIG = os.path.join(SOURCE, "configs", "zoo.yaml")
# (method, [(key, values)]) in the order the grid map lists them: the first key varies slowest. Two direction
# groups of two alphas each (TIES's trim, CAT's bases: merged once, scaled per alpha) and a point merged alone.
GRIDS = [
    ("ties", [("density", [0.2]), ("alpha", [0.3, 0.5])]),
    ("cat", [("lambda", [5.0]), ("c", [3]), ("alpha", [0.1, 0.15])]),
    ("regmean", [("reduction", [0.95])]),
]
# Four of the zoo's eight tasks (eval.tasks), to halve each point's scoring; the sweep and the oracle's evals alike.
EVAL_TASKS = ["--set", "eval.tasks=[digits, letters, greek, chess]"]
SCALED = {"ties", "cat"}  # methods whose alpha is a final scale (methods/method.hpp): one group per other setting


def grids_yaml(grids):
    """The grids as one YAML flow list for --set sweep.grids=..."""
    maps = []
    for method, axes in grids:
        items = [f"method: {method}"] + [f"{k}: {v[0]!r}" if len(v) == 1 else f"{k}: [{', '.join(map(repr, v))}]"
                                         for k, v in axes]
        maps.append("{" + ", ".join(items) + "}")
    return "[" + ", ".join(maps) + "]"


def points_of(grids):
    """Every point as (index, method, params, setting, group), in grid order."""
    points, groups = [], {}
    for method, axes in grids:
        for values in itertools.product(*(v for _, v in axes)):
            params = dict(zip((k for k, _ in axes), values))
            setting = " ".join(f"{k}={v!r}" for k, v in params.items()) or "-"
            key = (method,) + tuple((k, v) for k, v in params.items() if not (method in SCALED and k == "alpha"))
            group = groups.setdefault(key, len(groups))
            points.append((len(points), method, params, setting, group))
    return points


catmerge = catmerge_at  # (binary, ranks, args, cwd, fault=None, timeout=300)


def must_succeed(proc, what):
    if proc.returncode != 0:
        sys.exit(f"{what} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")


def read(path):
    with open(path) as f:
        return f.read()


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def journal(folder):
    """point index -> its journal entry."""
    out = {}
    for path in glob.glob(os.path.join(folder, "points", "*.json")):
        with open(path) as f:
            out[int(os.path.basename(path)[:-5])] = json.load(f)
    return out


def percent(correct, images):
    return 100.0 * correct / images  # as TaskAccuracy::percent


def average(counts):
    """Mean percent over tasks, summed in task order as PointScore::average does."""
    s = 0.0
    for correct, images in counts:
        s += percent(correct, images)
    return s / len(counts)


def differing_datasets(got_path, want_path):
    """Names of the datasets that differ (bytes, dtype or presence) between two HDF5 outputs."""
    got, want = tensors(got_path), tensors(want_path)
    return sorted(n for n in set(got) | set(want)
                  if n not in got or n not in want or got[n].kind != want[n].kind or got[n].raw != want[n].raw)


def one_line_error(proc):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return lines[0] if len(lines) == 1 else None


def main():
    binary = os.path.abspath(sys.argv[1])
    rng = seeded_random()
    check = Checks()
    points = points_of(GRIDS)
    total = len(points)
    groups = max(p[4] for p in points) + 1
    with tempfile.TemporaryDirectory() as tmp:
        def sweep_args(name, grids=GRIDS, extra=()):
            return ["sweep", CONFIG, "--set", f"sweep.grids={grids_yaml(grids)}", "--set",
                    f"sweep.dir={os.path.join(tmp, name)}", "--set", f"output.path={os.path.join(tmp, name + '.h5')}",
                    "--set", "runtime.threads=1", *EVAL_TASKS, *extra]

        # The oracle: each point as a run of its own, scored by `catmerge eval`.
        oracle, oracle_model, tasks = {}, {}, None
        for i, method, params, setting, _ in points:
            model = os.path.join(tmp, f"oracle-{i}.h5")
            proc = catmerge(binary, 1, ["run", CONFIG, "--set", "method=" + json.dumps(dict(name=method, **params)),
                                        "--set", f"output.path={model}", "--set", "runtime.threads=1"], tmp)
            must_succeed(proc, f"the run of point {i} ({method} {setting})")
            proc = catmerge(binary, 1, ["eval", CONFIG, "--model", model, "--split", "val", "--out",
                                        os.path.join(tmp, f"oracle-{i}-val"), "--set", "runtime.threads=1",
                                        *EVAL_TASKS], tmp)
            must_succeed(proc, f"the eval of point {i}")
            with open(os.path.join(tmp, f"oracle-{i}-val.json")) as f:
                got = json.load(f)["tasks"]
            tasks = tasks or [t["task"] for t in got]
            oracle[i] = [(t["correct"], t["images"]) for t in got]
            oracle_model[i] = model
            print(f"oracle point {i} {method} {setting}: val average {average(oracle[i]):.4f}")
        chosen = {}
        for i, method, *_ in points:  # the first point of the best average per method
            if method not in chosen or average(oracle[i]) > average(oracle[chosen[method]]):
                chosen[method] = i
        selected = None
        for c in chosen.values():
            if selected is None or average(oracle[c]) > average(oracle[selected]):
                selected = c
        oracle_test = {}
        for c in chosen.values():
            proc = catmerge(binary, 1, ["eval", CONFIG, "--model", oracle_model[c], "--split", "test", "--out",
                                        os.path.join(tmp, f"oracle-{c}-test"), "--set", "runtime.threads=1",
                                        *EVAL_TASKS], tmp)
            must_succeed(proc, f"the test eval of point {c}")
            with open(os.path.join(tmp, f"oracle-{c}-test.json")) as f:
                oracle_test[c] = [(t["correct"], t["images"]) for t in json.load(f)["tasks"]]
        check(tasks == ["digits", "letters", "greek", "chess"], f"eval.tasks: the oracle's evals score {tasks}")
        print(f"oracle: chosen per method {chosen}, selected point {selected}")

        def row(i, split, counts):
            label = "selected" if i == selected else "method" if i in chosen.values() else ""
            _, method, _, setting, _ = points[i]
            return ",".join([str(i), method, setting, split] + [f"{percent(c, n):.4f}" for c, n in counts] +
                            [f"{average(counts):.4f}", label])
        want_csv = "\n".join([",".join(["point", "method", "setting", "split"] + tasks + ["average", "chosen"])] +
                             [row(i, "val", oracle[i]) for i in range(total)] +
                             [row(c, "test", oracle_test[c]) for c in chosen.values()]) + "\n"

        # 1. The sweep at 1 rank against the oracle.
        whole = os.path.join(tmp, "whole")
        proc = catmerge(binary, 1, sweep_args("whole"), tmp)
        must_succeed(proc, "the sweep at 1 rank")
        check(f"{total} points in {groups} groups; {total} to score" in proc.stdout,
              f"sweep: says '{total} points in {groups} groups; {total} to score'")
        entries = journal(whole)
        check(sorted(entries) == list(range(total)), f"sweep: a journal entry per point, got {sorted(entries)}")
        for i, method, params, setting, _ in points:
            e = entries.get(i, {})
            named = (e.get("method"), e.get("setting"), e.get("params"), e.get("split"))
            check(named == (method, setting, params, "val"),
                  f"point {i}: journal names {method} {setting} {params} on val, got {named}")
            got = [(t["correct"], t["images"]) for t in e.get("tasks", [])]
            check(got == oracle[i],
                  f"point {i} ({method} {setting}): correct counts {got}, the separate run's {oracle[i]}")
        csv = read(os.path.join(whole, "results.csv"))
        check(csv == want_csv, f"sweep: results.csv is the oracle's table:\n{csv}---- want\n{want_csv}")
        with open(os.path.join(whole, "results.json")) as f:
            rj = json.load(f)
        check(rj.get("selected") == selected and rj.get("chosen") == list(chosen.values()),
              f"results.json: selected {rj.get('selected')} chosen {rj.get('chosen')}, "
              f"want {selected} {list(chosen.values())}")
        with open(os.path.join(whole, "sweep.json")) as f:
            check(json.load(f).get("points") == total, f"sweep.json: {total} points")
        diff = differing_datasets(whole + ".h5", oracle_model[selected])
        check(not diff, f"sweep: the selected model (point {selected}) is the separate run's; differ: {diff}")
        if shutil.which("gnuplot"):
            for method in sorted({p[1] for p in points}):
                png = os.path.join(whole, f"alpha-{method}.png")
                has_alpha = any("alpha" in p[2] for p in points if p[1] == method)
                ok = os.path.isfile(png) and read_bytes(png)[:8] == b"\x89PNG\r\n\x1a\n" if has_alpha \
                    else not os.path.exists(png)
                check(ok, f"sweep: {os.path.basename(png)} {'is a PNG' if has_alpha else 'absent (no alpha)'}")
        else:
            print("gnuplot is not installed: the alpha plots are not checked")

        # 2. At 2 ranks.
        proc = catmerge(binary, 2, sweep_args("ranks2"), tmp)
        must_succeed(proc, "the sweep at 2 ranks")
        check(filecmp.cmp(os.path.join(tmp, "ranks2", "results.csv"), os.path.join(whole, "results.csv"),
                          shallow=False),
              "2 ranks: results.csv is byte-identical to 1 rank's")
        diff = differing_datasets(os.path.join(tmp, "ranks2.h5"), oracle_model[selected])
        check(not diff, f"2 ranks: the selected model is the separate run's; differ: {diff}")

        # 2b. At 2 ranks with spread: points (each rank scores whole groups alone; rank 0 collects).
        proc = catmerge(binary, 2, sweep_args("spread2", extra=("--set", "sweep.spread=points")), tmp)
        must_succeed(proc, "the sweep at 2 ranks, spread: points")
        check(filecmp.cmp(os.path.join(tmp, "spread2", "results.csv"), os.path.join(whole, "results.csv"),
                          shallow=False),
              "2 ranks, spread: points: results.csv is byte-identical to 1 rank's")
        diff = differing_datasets(os.path.join(tmp, "spread2.h5"), oracle_model[selected])
        check(not diff, f"2 ranks, spread: points: the selected model is the separate run's; differ: {diff}")

        # 3. Killed after the n-th scored point, and started again.
        signals = rng.sample(["KILL", "TERM"], 2)
        for ranks, sig in zip((1, 2), signals):
            n = rng.randint(1, total - 1)
            name = f"resume{ranks}"
            case = f"{ranks} rank(s), SIG{sig} after point {n}"
            killed = catmerge(binary, ranks, sweep_args(name), tmp, f"point-scored:{n}:{sig}")
            scored = sorted(journal(os.path.join(tmp, name)))
            print(f"{case}: exit {killed.returncode}, journal {scored}")
            check(killed.returncode != 0, f"{case}: the killed sweep exits non-zero ({killed.returncode})")
            # Rank 0 writes point n's entry before it raises; at 2 ranks mpirun may end it as the other rank,
            # which raises at the same point, dies: then the entry of point n may be missing.
            want = [list(range(n))] if ranks == 1 else [list(range(n)), list(range(n - 1))]
            check(scored in want, f"{case}: the journal holds points {' or '.join(map(str, want))}, got {scored}")
            check(not os.path.exists(os.path.join(tmp, name, "results.csv")), f"{case}: no results.csv yet")
            left = glob.glob(os.path.join(tmp, name, "**", "*.tmp-*"), recursive=True)
            if sig == "TERM":
                check(not left, f"{case}: no temporaries after SIGTERM: {left}")
            again = catmerge(binary, ranks, sweep_args(name), tmp)
            check(again.returncode == 0, f"{case}: the restarted sweep exits 0 ({again.returncode}): {again.stderr}")
            check(f"{total} points in {groups} groups; {total - len(scored)} to score" in again.stdout,
                  f"{case}: the restarted sweep says '{total - len(scored)} to score'")
            csv = os.path.join(tmp, name, "results.csv")
            check(os.path.exists(csv) and filecmp.cmp(csv, os.path.join(whole, "results.csv"), shallow=False),
                  f"{case}: results.csv is byte-identical to the uninterrupted sweep's")
            if again.returncode == 0:
                diff = differing_datasets(os.path.join(tmp, name + ".h5"), oracle_model[selected])
                check(not diff, f"{case}: the selected model is the separate run's; differ: {diff}")

        # 4. Two parts, then --collect.
        parts = os.path.join(tmp, "parts")
        proc = catmerge(binary, 1, sweep_args("parts", extra=["--part", "0/2"]), tmp)
        must_succeed(proc, "--part 0/2")
        part0 = sorted(journal(parts))
        want0 = [p[0] for p in points if p[4] % 2 == 0]  # sweep.hpp: part I/N scores the groups g with g % N == I
        check(part0 == want0, f"--part 0/2: scored the points of groups 0, 2, ...: {want0}, got {part0}")
        check(not os.path.exists(os.path.join(parts, "results.csv")) and not os.path.exists(parts + ".h5"),
              "--part 0/2: writes no results.csv and no selected model")
        early = catmerge(binary, 1, sweep_args("parts", extra=["--collect"]), tmp)
        line = one_line_error(early)
        print(f"--collect after part 0 only: exit {early.returncode}: {line or early.stderr!r}")
        check(early.returncode == 1 and line is not None and parts in line,
              f"--collect before every part ran: exit 1 ({early.returncode}) and one line naming {parts}: "
              f"{early.stderr!r}")
        check(not os.path.exists(os.path.join(parts, "results.csv")), "--collect before every part: no results.csv")
        proc = catmerge(binary, 1, sweep_args("parts", extra=["--part", "1/2"]), tmp)
        must_succeed(proc, "--part 1/2")
        check(sorted(journal(parts)) == list(range(total)), "--part 1/2: every point is scored after both parts")
        proc = catmerge(binary, 1, sweep_args("parts", extra=["--collect"]), tmp)
        must_succeed(proc, "--collect")
        csv = os.path.join(parts, "results.csv")
        check(os.path.exists(csv) and filecmp.cmp(csv, os.path.join(whole, "results.csv"), shallow=False),
              "--collect: results.csv is byte-identical to the whole sweep's")
        diff = differing_datasets(parts + ".h5", whole + ".h5")
        check(not diff, f"--collect: the selected model's datasets are the whole sweep's; differ: {diff}")
        bad = catmerge(binary, 1, sweep_args("parts2", extra=["--part", "2/2"]), tmp)
        line = one_line_error(bad)
        print(f"--part 2/2: exit {bad.returncode}: {line or bad.stderr!r}")
        check(bad.returncode == 1 and line is not None and "--part" in line,
              f"--part 2/2 is refused: exit 1 ({bad.returncode}), one line naming --part: {bad.stderr!r}")
        check(not os.path.exists(os.path.join(tmp, "parts2")), "--part 2/2: no sweep folder made")

        # 5. Another sweep's folder.
        before = read(os.path.join(whole, "results.csv"))
        other = catmerge(binary, 1, sweep_args("whole", grids=GRIDS[:2]), tmp)
        line = one_line_error(other)
        print(f"another grid into {whole}: exit {other.returncode}: {line or other.stderr!r}")
        check(other.returncode == 1 and line is not None and os.path.join(whole, "sweep.json") in line,
              f"another sweep's folder is refused: exit 1 ({other.returncode}), one line naming "
              f"{whole}/sweep.json: {other.stderr!r}")
        check(read(os.path.join(whole, "results.csv")) == before and sorted(journal(whole)) == list(range(total)),
              "another sweep's folder: its results and journal are left as they were")
    check.finish()


if __name__ == "__main__":
    main()
