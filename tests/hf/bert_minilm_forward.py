#!/usr/bin/env python3
"""catmerge's bert forward equals transformers on the real all-MiniLM-L6-v2 (build/models/all-MiniLM-L6-v2,
made by scripts/setup-minilm.sh; not committed): a few real sentences of different lengths, tokenised with the
model's own tokenizer and padded to the longest, run through transformers' BertModel (eager, float32;
tools/reference/bert_features.py hooks every feature site and mean-pools) into an oracle file in a temporary
folder, which the unit-test binary's ForwardOracle.ModelNamedByTheEnvironment then checks (every site and the
pooled output within 1e-4 relative, tests/unit/forward_testing.cpp) with catmerge's forward on the CPU.

  bert_minilm_forward.py CATMERGE_UNIT_TESTS [MODEL_DIR]

Exit 0: passed, 1: failed, 77: skipped (torch, transformers or h5py missing, or no model at MODEL_DIR)."""
import os
import subprocess
import sys
import tempfile

SKIP = 77
ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
try:
    import h5py  # noqa: F401
    import numpy as np  # noqa: F401
    import torch
    import transformers
except ImportError as e:
    print(f"SKIP: the Python package '{e.name}' is not installed; this test runs all-MiniLM-L6-v2 in transformers")
    sys.exit(SKIP)

SENTENCES = ["A man is playing a guitar on the stage.",
             "The weather is lovely today.",
             "Merging fine-tuned models without any training data is surprisingly effective, at least for tasks "
             "that share one pre-trained base.",
             "Hello!"]


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    binary = sys.argv[1]
    model_dir = sys.argv[2] if len(sys.argv) == 3 else os.path.join(ROOT, "build", "models", "all-MiniLM-L6-v2")
    if not os.path.exists(os.path.join(model_dir, "model.safetensors")):
        print(f"SKIP: no model at {model_dir} (scripts/setup-minilm.sh puts all-MiniLM-L6-v2 there)")
        sys.exit(SKIP)
    import bert_features
    import ckpt_io
    torch.set_num_threads(1)
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    tokens = tokenizer(SENTENCES, padding=True, return_tensors="np")
    ids, mask = tokens["input_ids"].astype(np.int64), tokens["attention_mask"].astype(np.int64)
    lengths = mask.sum(axis=1)
    assert len(set(lengths.tolist())) == len(SENTENCES), lengths   # every sequence but the longest padded
    model = transformers.BertModel.from_pretrained(model_dir, attn_implementation="eager", dtype=torch.float32).eval()
    rows = bert_features.bert_forward_sites(model, ids, mask)
    sites = bert_features.bert_site_names(model.config.num_hidden_layers)
    assert set(rows) == set(sites) | {"pooled"}
    with tempfile.TemporaryDirectory() as tmp:
        oracle = os.path.join(tmp, "minilm_oracle.h5")
        datasets = {s: rows[s] for s in sites + ["pooled"]}
        datasets["input_ids"], datasets["attention_mask"] = ids, mask
        ckpt_io.write_h5_datasets(oracle, datasets)
        env = dict(os.environ, CATMERGE_ORACLE_MODEL=os.path.abspath(model_dir), CATMERGE_ORACLE_ARCH="bert",
                   CATMERGE_ORACLE=oracle)
        run = subprocess.run([binary, "--gtest_filter=ForwardOracle.ModelNamedByTheEnvironment"], env=env,
                             capture_output=True, text=True)
    print(run.stdout[-4000:] + run.stderr[-2000:])
    ran = "[  PASSED  ] 1 test" in run.stdout and "SKIPPED" not in run.stdout
    print(f"{len(SENTENCES)} sentences of {lengths.tolist()} tokens (padded to {ids.shape[1]}), {len(sites)} sites: "
          + ("ok" if run.returncode == 0 and ran else "FAIL"))
    sys.exit(0 if run.returncode == 0 and ran else 1)


if __name__ == "__main__":
    main()
