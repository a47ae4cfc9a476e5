"""Shared helpers of the MPI and Slurm tests: running catmerge under mpirun, writing a fixture case's
configuration, and comparing HDF5 outputs with h5py (a reader independent of catmerge)."""
import json
import os
import subprocess
from typing import NamedTuple

import h5py
import numpy as np

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(SOURCE, "data", "fixtures")
MPI_ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")


def cases():
    with open(os.path.join(FIXTURES, "cases.json")) as f:
        return json.load(f)


def write_case_config(case, folder, output):
    """The case's configuration (JSON is YAML) with fixture paths made absolute."""
    cfg = json.loads(json.dumps(case["config"]))
    cfg["model"]["base"] = os.path.join(FIXTURES, cfg["model"]["base"])
    for e in cfg["experts"]:
        for key in ("path", "exemplars", "fisher"):
            if key in e:
                e[key] = os.path.join(FIXTURES, e[key])
    cfg["output"]["path"] = output
    cfg.setdefault("runtime", {})["threads"] = 1
    path = os.path.join(folder, case["name"] + ".yaml")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)
    return path


def seeded_random():
    """A random.Random from CATMERGE_TEST_SEED, or a fresh seed, printed so that a failing run can be repeated."""
    import random
    seed = int(os.environ.get("CATMERGE_TEST_SEED", random.randrange(2**32)))
    print(f"seed {seed} (CATMERGE_TEST_SEED={seed} repeats this run)")
    return random.Random(seed)


def catmerge_at(binary, ranks, args, cwd, fault=None, timeout=300):
    """`catmerge ARGS` in `cwd` at `ranks` ranks (1: the binary alone, as a Slurm step of one task runs it),
    with CATMERGE_FAULT (src/common/fault.hpp) set to `fault` or unset."""
    env = {k: v for k, v in MPI_ENV.items() if k != "CATMERGE_FAULT"}
    if fault:
        env["CATMERGE_FAULT"] = fault
    if ranks == 1:
        cmd = [binary] + args
    else:
        cmd = ["mpirun", "-np", str(ranks)] + (["-x", "CATMERGE_FAULT"] if fault else []) + [binary] + args
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


# Open MPI 4.x's mpirun sometimes reports a rank that finished cleanly as "rank N with PID 0 ... exiting
# improperly": a race in its launcher, seen once in hundreds of runs of a plain hello world
# (github.com/open-mpi/ompi/issues/7833). PID 0 marks it: a rank of ours that really exits without
# MPI_Finalize is reported with its own PID.
LAUNCHER_RACE = "with PID 0 on"


def mpirun(binary, ranks, args, timeout=300):
    """A run expected to succeed; run once more, saying so, when only the launcher race above failed it."""
    cmd = ["mpirun", "-np", str(ranks), binary] + args
    r = subprocess.run(cmd, env=MPI_ENV, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0 and LAUNCHER_RACE in r.stderr:
        print(f"mpirun reported rank PID 0 (Open MPI launcher race) for {' '.join(args)}; running again", flush=True)
        r = subprocess.run(cmd, env=MPI_ENV, capture_output=True, text=True, timeout=timeout)
    return r


class Tensor(NamedTuple):
    raw: bytes          # the dataset's bytes
    values: np.ndarray  # as float64
    kind: str           # "f32", "f16" or "bf16"


def tensors(path):
    """Every root dataset as a Tensor; bfloat16 (uint16 + attribute dtype="bfloat16") decoded."""
    out = {}
    with h5py.File(path, "r") as f:
        for name, d in f.items():
            raw = d[()]
            if d.attrs.get("dtype") in (b"bfloat16", "bfloat16"):
                values, kind = (raw.astype(np.uint32) << 16).view(np.float32).astype(np.float64), "bf16"
            else:
                values, kind = raw.astype(np.float64), "f16" if raw.dtype == np.float16 else "f32"
            out[name] = Tensor(np.ascontiguousarray(raw).tobytes(), values, kind)
    return out


def ulp16(kind, v):
    """One unit in the last place of a 16-bit value near v (docs/DESIGN.md: the reference rounds the same
    float32 result, so a last-bit difference of the float32 can flip the 16-bit rounding)."""
    tiny, bits = (6.1e-5, 10) if kind == "f16" else (1e-38, 7)
    return np.ldexp(1.0, np.floor(np.log2(np.maximum(np.abs(v), tiny))).astype(int) - bits)


def max_relative_error(got, want):
    """max over tensors of max|got - want| / max|want|, where an element of a 16-bit output within one unit in
    its last place counts as equal."""
    worst = 0.0
    for name, w in want.items():
        err = np.abs(got[name].values - w.values)
        if w.kind != "f32":
            err = np.where(err <= ulp16(w.kind, w.values), 0.0, err)
        scale = max(np.abs(w.values).max(initial=0.0), 1e-30)
        worst = max(worst, float(err.max(initial=0.0) / scale))
    return worst
