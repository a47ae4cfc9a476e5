"""Shared helpers of the MPI and Slurm tests: running catmerge under mpirun, writing a fixture case's
configuration, and comparing HDF5 outputs with h5py (a reader independent of catmerge)."""
import json
import os
import subprocess

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


def mpirun(binary, ranks, args, timeout=300):
    return subprocess.run(["mpirun", "-np", str(ranks), binary] + args, env=MPI_ENV, capture_output=True,
                          text=True, timeout=timeout)


def tensors(path):
    """Every root dataset as (raw bytes, float64 values); bfloat16 (uint16 + attribute) decoded."""
    out = {}
    with h5py.File(path, "r") as f:
        for name, d in f.items():
            raw = d[()]
            if d.attrs.get("dtype") in (b"bfloat16", "bfloat16"):
                values = (raw.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
            else:
                values = raw.astype(np.float64)
            out[name] = (np.ascontiguousarray(raw).tobytes(), values)
    return out


def max_relative_error(got, want):
    worst = 0.0
    for name, (_, w) in want.items():
        g = got[name][1]
        scale = max(np.abs(w).max(initial=0.0), 1e-30)
        worst = max(worst, float(np.abs(g - w).max(initial=0.0) / scale))
    return worst
