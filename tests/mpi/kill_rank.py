#!/usr/bin/env python3
"""Kills one rank (SIGKILL) in the middle of a 3-rank merge under mpirun and checks the failure path: every
rank exits within 30 s, mpirun exits non-zero, and neither the output nor its temporary file exists. Once
for each output format: the HDF5 file that rank 0 writes, and the safetensors directory every rank writes.

  kill_rank.py CATMERGE_BINARY"""
import glob
import os
import signal
import subprocess
import sys
import tempfile
import time

from common import MPI_ENV, SOURCE


def ranks_of(config):
    """pid -> MPI rank of every catmerge process running `config`."""
    found = {}
    for proc in glob.glob("/proc/[0-9]*"):
        try:
            with open(proc + "/cmdline", "rb") as f:
                if config.encode() not in f.read():
                    continue
            with open(proc + "/environ", "rb") as f:
                env = dict(v.split(b"=", 1) for v in f.read().split(b"\0") if b"=" in v)
        except OSError:
            continue
        if b"OMPI_COMM_WORLD_RANK" in env:
            found[int(os.path.basename(proc))] = int(env[b"OMPI_COMM_WORLD_RANK"])
    return found


def kill_one_rank(binary, tmp, config, fmt):
    """The checks of one killed merge, as (ok, what) pairs, and how long the ranks took to end."""
    output = os.path.join(tmp, "merged.h5" if fmt == "hdf5" else "merged")
    args = ["--set", f"output.path={output}", "--set", f"output.format={fmt}"]
    job = subprocess.Popen(["mpirun", "-np", "3", binary, "run", config] + args, env=MPI_ENV,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not glob.glob(output + ".tmp-*"):  # rank 0 has opened the inputs and started the output
        if job.poll() is not None or time.time() > deadline:
            return [(False, f"{fmt}: the merge started: {job.communicate()[1]}")], 0
        time.sleep(0.05)
    ranks = ranks_of(config)
    while len(ranks) < 3 and job.poll() is None and time.time() < deadline:
        time.sleep(0.02)
        ranks = ranks_of(config)
    victim = [pid for pid, rank in ranks.items() if rank == 1]
    if len(ranks) != 3 or not victim or job.poll() is not None:
        return [(False, f"{fmt}: 3 running ranks mid-merge, found {ranks} (job ended: {job.poll() is not None})")], 0
    os.kill(victim[0], signal.SIGKILL)
    killed = time.time()
    try:
        job.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        job.kill()
        return [(False, f"{fmt}: mpirun ended within 30 s after a rank was killed")], 30
    took = time.time() - killed
    while ranks_of(config) and time.time() - killed < 30:
        time.sleep(0.1)
    left = ranks_of(config)
    return [
        (job.returncode != 0, f"{fmt}: mpirun exit code {job.returncode} is non-zero"),
        (not left, f"{fmt}: no rank left running ({left})"),
        (not os.path.exists(output), f"{fmt}: no output under the final name"),
        (not glob.glob(output + ".tmp-*"), f"{fmt}: no temporary output"),
    ], took


def main():
    binary = sys.argv[1]
    checks = []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, os.path.join(SOURCE, "tools", "make_random_clip.py"), tmp, "--width", "512",
                        "--layers", "8", "--experts", "4"], check=True)
        config = os.path.join(tmp, "merge.yaml")
        for fmt in ("hdf5", "safetensors"):
            found, took = kill_one_rank(binary, tmp, config, fmt)
            checks += found
            print(f"{fmt}: all ranks ended {took:.1f} s after rank 1 was killed")
    for ok, what in checks:
        print(("ok   " if ok else "FAIL ") + what)
    passed = sum(ok for ok, _ in checks)
    print(f"{passed} passed, {len(checks) - passed} failed")
    return 0 if passed == len(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
