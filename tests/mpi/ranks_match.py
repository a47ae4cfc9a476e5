#!/usr/bin/env python3
"""Every fixture case merged with 1, 2, 3 and 4 ranks under real Open MPI (mpirun --oversubscribe) gives the
single-process result: the same datasets byte for byte (each rank uses one thread), and so within 1e-6
relative, and the same `inputs` attribute, whose content hashes equal those of the independent Python
reference (tools/reference/content_hash.py, python3-xxhash); the single-process result is checked against the
reference's expected output as well.

  ranks_match.py CATMERGE_BINARY"""
import json
import os
import sys
import tempfile

import h5py

from common import FIXTURES, cases, max_relative_error, mpirun, tensors, write_case_config

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "reference"))
from content_hash import content_hash  # noqa: E402


def inputs_of(path):
    with h5py.File(path, "r") as f:
        return json.loads(f.attrs["inputs"])


def main():
    binary = sys.argv[1]
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases():
            results, inputs = {}, {}
            for ranks in (1, 2, 3, 4):
                out = os.path.join(tmp, f"{case['name']}-{ranks}.h5")
                cfg = write_case_config(case, tmp, out)
                r = mpirun(binary, ranks, ["run", cfg])
                if r.returncode != 0:
                    failures.append(f"{case['name']} with {ranks} ranks: exit {r.returncode}: {r.stderr.strip()}")
                    break
                results[ranks] = tensors(out)
                inputs[ranks] = inputs_of(out)
            else:
                one = results[1]
                want = tensors(os.path.join(FIXTURES, case["expected"]))
                err = max_relative_error(one, want)
                if err > 1e-5:
                    failures.append(f"{case['name']}: 1 rank vs reference: max relative error {err:.3g}")
                for entry in inputs[1]:
                    # An exemplar input is recorded as FILE:/GROUP; the hash is the whole file's.
                    path = entry["path"].rsplit(":/", 1)[0] if entry["role"].startswith("exemplars:") else entry["path"]
                    want_hash = content_hash(path)
                    if entry.get("xxh3_128_tree_256KiB") != want_hash:
                        failures.append(f"{case['name']}: inputs hash of {entry['path']} is "
                                        f"{entry.get('xxh3_128_tree_256KiB')}, the reference's {want_hash}")
                for ranks in (2, 3, 4):
                    if inputs[ranks] != inputs[1]:
                        failures.append(f"{case['name']}: {ranks} ranks record other inputs than 1 rank")
                    many = results[ranks]
                    if set(many) != set(one):
                        failures.append(f"{case['name']}: {ranks} ranks wrote other tensors")
                        continue
                    diff = [n for n in one if one[n].raw != many[n].raw]
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
