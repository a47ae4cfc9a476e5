#!/usr/bin/env python3
"""Every fixture case merged with 1, 2, 3 and 4 ranks under real Open MPI (mpirun --oversubscribe) gives the
single-process result: the same datasets byte for byte (each rank uses one thread), and so within 1e-6
relative; the single-process result is checked against the reference's expected output as well.

  ranks_match.py CATMERGE_BINARY"""
import os
import sys
import tempfile

from common import FIXTURES, cases, max_relative_error, mpirun, tensors, write_case_config


def main():
    binary = sys.argv[1]
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases():
            results = {}
            for ranks in (1, 2, 3, 4):
                out = os.path.join(tmp, f"{case['name']}-{ranks}.h5")
                cfg = write_case_config(case, tmp, out)
                r = mpirun(binary, ranks, ["run", cfg])
                if r.returncode != 0:
                    failures.append(f"{case['name']} with {ranks} ranks: exit {r.returncode}: {r.stderr.strip()}")
                    break
                results[ranks] = tensors(out)
            else:
                one = results[1]
                want = tensors(os.path.join(FIXTURES, case["expected"]))
                err = max_relative_error(one, want)
                if err > 1e-5:
                    failures.append(f"{case['name']}: 1 rank vs reference: max relative error {err:.3g}")
                for ranks in (2, 3, 4):
                    many = results[ranks]
                    if set(many) != set(one):
                        failures.append(f"{case['name']}: {ranks} ranks wrote other tensors")
                        continue
                    diff = [n for n in one if one[n][0] != many[n][0]]
                    rel = max_relative_error(many, one)
                    if diff or rel > 1e-6:
                        failures.append(f"{case['name']}: {ranks} ranks differ from 1 rank in {len(diff)} tensors "
                                        f"(max relative {rel:.3g}), first {diff[:1]}")
                print(f"{case['name']}: 1-4 ranks identical; vs reference {err:.2e}", flush=True)
    for f in failures:
        print("FAIL", f)
    print(f"{len(cases()) - len({f.split(':')[0] for f in failures})} passed, "
          f"{len({f.split(':')[0] for f in failures})} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
