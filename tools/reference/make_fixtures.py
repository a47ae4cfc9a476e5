#!/usr/bin/env python3
"""Deterministically (re)writes data/fixtures/: models, exemplars, Fisher files, the forward oracle, the
merge cases (cases.json) and their expected outputs, then runs the self-checks. See README.md.

    python3 tools/reference/make_fixtures.py [--out data/fixtures]
"""
import argparse
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# What this script writes under data/fixtures/ (and removes before rewriting).
OWNED = ("clip_hf", "clip_bf16", "clip_openclip", "llama", "llama_gqa", "llama3_rope", "mistral", "qwen2",
         "fisher", "forward", "eval", "expected", "exemplars.h5", "tokens.h5", "cases.json", "VERSIONS.txt")
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
import transformers  # noqa: E402

transformers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()

import checks  # noqa: E402
import ckpt_io  # noqa: E402
import fixtures  # noqa: E402
import models  # noqa: E402
import philox  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=os.path.join(HERE, "..", "..", "data", "fixtures"))
    args = ap.parse_args()
    root = os.path.normpath(args.out)

    philox.self_test()
    # Regenerate our own entries from scratch; anything else in data/fixtures (e.g. io/, written by
    # make_io_fixtures.py) is left alone.
    for entry in OWNED:
        p = os.path.join(root, entry)
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.exists(p):
            os.remove(p)
    os.makedirs(root, exist_ok=True)

    fixtures.write_inputs(root)
    checks.check_inputs(root)

    summary = []
    for which in ("clip_hf", "clip_openclip"):
        rows, tensors, cfg, is_oc, pixels = fixtures.write_forward_oracle(root, which)
        summary.append(checks.check_forward(rows, tensors, cfg, is_oc, pixels))
    summary += checks.check_family_rules(root)
    for fixture in models.FAMILY_FIXTURES:
        rows, weights, cfg, ids, mask = fixtures.write_family_forward_oracle(root, fixture)
        summary += checks.check_family_forward(root, fixture, rows, weights, cfg, ids, mask)
    fixtures.write_family_eval(root)

    all_cases = fixtures.cases()
    for case in all_cases:
        diag = {}
        merged, dtypes = fixtures.merge_case(root, case["config"], diag=diag)
        ckpt_io.write_expected(os.path.join(root, case["expected"]), merged, dtypes)
        summary.append(checks.check_case(root, case, merged, diag))
    summary += checks.check_layout_equivalence(root, all_cases)

    with open(os.path.join(root, "cases.json"), "w") as f:
        json.dump(all_cases, f, indent=1)
        f.write("\n")
    write_versions(root)

    total, count = 0, 0
    for entry in OWNED:
        p = os.path.join(root, entry)
        for dirpath, _, files in os.walk(p) if os.path.isdir(p) else [(root, [], [entry])]:
            for fn in files:
                os.chmod(os.path.join(dirpath, fn), 0o644)   # safetensors writes 0600
                total += os.path.getsize(os.path.join(dirpath, fn))
                count += 1
    everything = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs)
    print("\n".join(summary))
    print(f"{len(all_cases)} cases, {count} files, {total / 1e6:.2f} MB written "
          f"({everything / 1e6:.2f} MB in all of {root})")
    assert total < 25e6   # the llama-family forward fixtures are most of it (about 12 MB)


def write_versions(root):
    import h5py
    import safetensors
    import transformers
    with open(os.path.join(root, "VERSIONS.txt"), "w") as f:
        f.write(f"python {sys.version.split()[0]}\n")
        f.write(f"torch {torch.__version__}\n")
        f.write(f"transformers {transformers.__version__}\n")
        f.write(f"numpy {np.__version__}\n")
        f.write(f"h5py {h5py.__version__} (HDF5 {h5py.version.hdf5_version})\n")
        f.write(f"safetensors {safetensors.__version__}\n")


if __name__ == "__main__":
    main()
