#!/usr/bin/env python3
"""A CAT run of the zoo killed mid-merge and started again gives a byte-identical HDF5 (README "Preemption and
resume"), at 1 and 2 ranks, for SIGKILL and SIGTERM. CATMERGE_FAULT=tensor-saved:<n>:<signal> (src/common/fault.hpp)
makes each process raise the signal right after it saved its n-th merged tensor under <output>.resume/; the
restarted run must take those tensors (its "resumed: K of 55" line, K the number of t*.bin files the killed run
left), commit an output byte-identical (filecmp) to an uninterrupted run's, and remove the resume directory. A
run with another configuration must not take the saved tensors of a killed run and must write what a fresh run of
that configuration writes. n is drawn at random: the seed is printed, and CATMERGE_TEST_SEED sets it.

  run_resume.py CATMERGE_BINARY"""
import filecmp
import glob
import os
import re
import shutil
import sys
import tempfile

from common import SOURCE, catmerge_at, seeded_random

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from checks import Checks  # noqa: E402

CONFIG = os.path.join(SOURCE, "configs", "zoo.yaml")
TENSORS = 55  # the zoo's CLIP-ViT: every tensor of the model
RESUMED = re.compile(r"resumed: (\d+) of (\d+) tensors")


catmerge = catmerge_at  # (binary, ranks, args, cwd, fault=None, timeout=300)


def must_succeed(proc, what):
    if proc.returncode != 0:
        sys.exit(f"{what} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")


def main():
    binary = os.path.abspath(sys.argv[1])
    rng = seeded_random()
    check = Checks()
    with tempfile.TemporaryDirectory() as tmp:
        work = os.path.join(tmp, "work")  # the runs' folder: the output, its .resume and .tmp-* only
        os.mkdir(work)
        out = os.path.join(work, "out.h5")
        resume = out + ".resume"
        base_args = ["run", CONFIG, "--set", f"output.path={out}", "--set", "runtime.threads=1"]
        alpha_args = base_args + ["--set", "method.alpha=0.2"]

        # The oracles: uninterrupted runs to the same output path (the file stores the configuration's text,
        # output path included), moved aside. The same working folder throughout: the provenance records the
        # inputs' paths relative to it.
        refs = {}
        for name, args in (("alpha 0.15", base_args), ("alpha 0.2", alpha_args)):
            proc = catmerge(binary, 1, args, tmp)
            must_succeed(proc, f"the uninterrupted run ({name})")
            check(RESUMED.search(proc.stdout) is None, f"uninterrupted run ({name}): no 'resumed' line")
            check(not os.path.exists(resume), f"uninterrupted run ({name}): no {os.path.basename(resume)} after it")
            refs[name] = os.path.join(tmp, f"reference {name}.h5")
            os.rename(out, refs[name])
        check(not filecmp.cmp(refs["alpha 0.15"], refs["alpha 0.2"], shallow=False),
              "the references of alpha 0.15 and 0.2 differ (else the changed-configuration check proves nothing)")

        for ranks in (1, 2):
            for sig in ("KILL", "TERM"):
                n = rng.randint(1, 25)
                case = f"{ranks} rank(s), SIG{sig} after tensor {n}"
                fault = f"tensor-saved:{n}:{sig}"
                killed = catmerge(binary, ranks, base_args, tmp, fault)
                saved = sorted(glob.glob(os.path.join(resume, "t*.bin")))
                temps = sorted(glob.glob(out + ".tmp-*"))
                print(f"{case}: exit {killed.returncode}, {len(saved)} tensors saved, temporaries {temps}")
                check(killed.returncode != 0, f"{case}: the killed run exits non-zero ({killed.returncode})")
                check(not os.path.exists(out), f"{case}: no output under the final name after the kill")
                check(os.path.isfile(os.path.join(resume, "key.json")), f"{case}: {resume}/key.json is there")
                if ranks == 1:
                    check(len(saved) == n, f"{case}: {n} t*.bin saved, found {len(saved)}")
                else:  # the process that raised saved n; the other one, until mpirun ended it, some
                    check(len(saved) >= n, f"{case}: at least {n} t*.bin saved, found {len(saved)}")
                check(len(saved) < TENSORS, f"{case}: fewer than {TENSORS} tensors saved ({len(saved)})")
                if sig == "TERM":  # the SIGTERM handler removes the temporaries (io/temp_files)
                    check(not temps, f"{case}: no {os.path.basename(out)}.tmp-* after SIGTERM ({temps})")

                again = catmerge(binary, ranks, base_args, tmp)
                check(again.returncode == 0, f"{case}: the restarted run exits 0 ({again.returncode}): {again.stderr}")
                m = RESUMED.search(again.stdout)
                got = (int(m.group(1)), int(m.group(2))) if m else None
                print(f"{case}: restarted run says {m.group(0) if m else 'nothing about resuming'}")
                check(got == (len(saved), TENSORS) and got[0] >= 1,
                      f"{case}: restarted run says 'resumed: {len(saved)} of {TENSORS} tensors', got {got}")
                same = os.path.exists(out) and filecmp.cmp(out, refs["alpha 0.15"], shallow=False)
                check(same, f"{case}: the restarted run's output is byte-identical to the uninterrupted run's")
                check(not os.path.exists(resume), f"{case}: {os.path.basename(resume)} is gone after the commit")
                left = sorted(set(os.listdir(work)) - {"out.h5"})
                # A SIGKILLed writer cannot remove its temporary output: it is the one thing a KILL may leave.
                allowed = {os.path.basename(t) for t in temps} if sig == "KILL" else set()
                if temps:
                    print(f"{case}: the killed run left {[os.path.basename(t) for t in temps]} (removed)")
                check(set(left) <= allowed, f"{case}: nothing left beside the output but the KILLed temporary: {left}")
                for name in left:
                    os.remove(os.path.join(work, name))
                os.remove(out)

        # A changed configuration must not take the tensors of a killed run of another one.
        n = rng.randint(1, 25)
        case = f"alpha 0.2 after a run of alpha 0.15 killed after tensor {n}"
        killed = catmerge(binary, 1, base_args, tmp, f"tensor-saved:{n}:KILL")
        check(killed.returncode != 0 and len(glob.glob(os.path.join(resume, "t*.bin"))) == n,
              f"{case}: the killed run exits non-zero ({killed.returncode}) and leaves {n} saved tensors")
        changed = catmerge(binary, 1, alpha_args, tmp)
        check(changed.returncode == 0, f"{case}: the run exits 0 ({changed.returncode}): {changed.stderr}")
        m = RESUMED.search(changed.stdout)
        print(f"{case}: {m.group(0) if m else 'no resumed line'}")
        check(m is None, f"{case}: nothing resumed ({m.group(0) if m else ''})")
        check(os.path.exists(out) and filecmp.cmp(out, refs["alpha 0.2"], shallow=False),
              f"{case}: the output is byte-identical to a fresh alpha 0.2 run's")
        check(not os.path.exists(resume), f"{case}: {os.path.basename(resume)} is gone after the commit")
        for t in glob.glob(out + ".tmp-*"):
            print(f"{case}: the killed run left {os.path.basename(t)} (removed)")
            os.remove(t)
        shutil.rmtree(work)
    check.finish()


if __name__ == "__main__":
    main()
