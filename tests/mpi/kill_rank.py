#!/usr/bin/env python3
"""Kills one rank (SIGKILL) in the middle of a 3-rank merge under mpirun and checks the failure path: every
rank exits within 30 s, mpirun exits non-zero, and neither the output nor its temporary file exists.

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


def main():
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, os.path.join(SOURCE, "tools", "make_random_clip.py"), tmp, "--width", "512",
                        "--layers", "8", "--experts", "4"], check=True)
        config = os.path.join(tmp, "merge.yaml")
        output = os.path.join(tmp, "merged.h5")
        job = subprocess.Popen(["mpirun", "-np", "3", binary, "run", config], env=MPI_ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        while not glob.glob(output + ".tmp-*"):  # rank 0 has opened the inputs and started the output
            if job.poll() is not None or time.time() > deadline:
                print("FAIL: the merge never started:", job.communicate()[1])
                return 1
            time.sleep(0.05)
        ranks = ranks_of(config)
        while len(ranks) < 3 and job.poll() is None and time.time() < deadline:
            time.sleep(0.02)
            ranks = ranks_of(config)
        victim = [pid for pid, rank in ranks.items() if rank == 1]
        if len(ranks) != 3 or not victim or job.poll() is not None:
            print(f"FAIL: expected 3 running ranks mid-merge, found {ranks} (job ended: {job.poll() is not None})")
            return 1
        os.kill(victim[0], signal.SIGKILL)
        killed = time.time()
        try:
            _, err = job.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            job.kill()
            print("FAIL: mpirun still running 30 s after a rank was killed")
            return 1
        took = time.time() - killed
        while ranks_of(config) and time.time() - killed < 30:
            time.sleep(0.1)
        left = ranks_of(config)
        checks = [
            (job.returncode != 0, f"mpirun exit code {job.returncode} is non-zero"),
            (not left, f"no rank left running ({left})"),
            (not os.path.exists(output), "no output file"),
            (not glob.glob(output + ".tmp-*"), "no temporary output file"),
        ]
        for ok, what in checks:
            print(("ok   " if ok else "FAIL ") + what)
        print(f"all ranks ended {took:.1f} s after rank 1 was killed")
        passed = sum(ok for ok, _ in checks)
        print(f"{passed} passed, {len(checks) - passed} failed")
        return 0 if passed == len(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
