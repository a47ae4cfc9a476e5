#!/usr/bin/env python3
"""Script test of tools/tokenize_exemplars.py (exit 0: passed, 1: failed, 77: skipped because transformers,
tokenizers, h5py or numpy is not installed).

Builds a tiny WordLevel tokenizer offline (tokenizer.json + tokenizer_config.json in a temporary model dir;
BOS/EOS added by its post-processor), runs the tool as a subprocess and reads the written groups back with
h5py, checking them against the tokenizer's own output and against ids worked out by hand:
right and left padding, --max-length truncation, appending a second group to the same file, refusing to
overwrite an existing group, blank lines skipped, and the eos token as pad when the tokenizer has no pad.

    python3 tests/tools/test_tokenize_exemplars.py
"""
import json
import os
import subprocess
import sys
import tempfile

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(HERE, "..", "..", "tools", "tokenize_exemplars.py")

try:
    import h5py
    import numpy as np
    import tokenizers
    import transformers  # noqa: F401
    from tokenizers import models, pre_tokenizers, processors
except ImportError as e:   # the Python ML stack is optional for catmerge's tests
    print(f"SKIP: {e}")
    sys.exit(SKIP)

VOCAB = {"[PAD]": 0, "[UNK]": 1, "[BOS]": 2, "[EOS]": 3, "the": 4, "cat": 5, "sat": 6, "on": 7, "mat": 8,
         "a": 9, "dog": 10}
TEXT = "the cat sat on the mat\n\n   \na dog\ncat sat on a bird\r\n"   # 2 blank lines; 'bird' is unknown
# By hand: [BOS] words [EOS], unknown -> [UNK]
ROWS = [[2, 4, 5, 6, 7, 4, 8, 3], [2, 9, 10, 3], [2, 5, 6, 7, 9, 1, 3]]


def make_tokenizer(directory, with_pad=True):
    os.makedirs(directory, exist_ok=True)
    tok = tokenizers.Tokenizer(models.WordLevel(VOCAB, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="[BOS] $A [EOS]",
                                                       special_tokens=[("[BOS]", 2), ("[EOS]", 3)])
    tok.save(os.path.join(directory, "tokenizer.json"))
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "[BOS]", "eos_token": "[EOS]",
           "unk_token": "[UNK]", "model_max_length": 512}
    if with_pad:
        cfg["pad_token"] = "[PAD]"
    with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f)


def run(*args):
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True)


def padded(rows, pad, side, max_length=None):
    if max_length is not None:   # truncation keeps the special tokens: [BOS] first words [EOS]
        rows = [r if len(r) <= max_length else r[:max_length - 1] + [r[-1]] for r in rows]
    L = max(len(r) for r in rows)
    ids = np.full((len(rows), L), pad, dtype=np.int64)
    mask = np.zeros((len(rows), L), dtype=np.int64)
    for j, r in enumerate(rows):
        s = slice(0, len(r)) if side == "right" else slice(L - len(r), L)
        ids[j, s] = r
        mask[j, s] = 1
    return ids, mask


def read_group(path, group):
    with h5py.File(path, "r") as f:
        g = f[group]
        assert sorted(g) == ["attention_mask", "input_ids"], sorted(g)
        assert g["input_ids"].dtype == np.int64 and g["attention_mask"].dtype == np.int64
        return g["input_ids"][()], g["attention_mask"][()], dict(g.attrs)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def main():
    from transformers import AutoTokenizer
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "model")
        make_tokenizer(model)
        text = os.path.join(tmp, "lines.txt")
        with open(text, "w", encoding="utf-8", newline="") as f:
            f.write(TEXT)
        out = os.path.join(tmp, "tokens.h5")
        lines = ["the cat sat on the mat", "a dog", "cat sat on a bird"]

        # 1. right padding (the tokenizer's default), the longest sequence sets L
        r = run(model, text, out, "task1")
        check(r.returncode == 0, f"tool failed: {r.stderr}")
        ids, mask, attrs = read_group(out, "task1")
        want_ids, want_mask = padded(ROWS, 0, "right")
        check(np.array_equal(ids, want_ids) and np.array_equal(mask, want_mask), f"task1 by hand:\n{ids}\n{mask}")
        tok = AutoTokenizer.from_pretrained(model)
        enc = tok(lines, padding="longest", return_tensors="np")
        check(np.array_equal(ids, enc["input_ids"]) and np.array_equal(mask, enc["attention_mask"]),
              "task1 vs the tokenizer")
        check(attrs["pad_token_id"] == 0 and attrs["padding_side"] == "right", attrs)

        # 2. appended to the same file: left padding and --max-length 5
        r = run(model, text, out, "/left5", "--padding-side", "left", "--max-length", "5")
        check(r.returncode == 0, f"tool failed: {r.stderr}")
        ids, mask, attrs = read_group(out, "left5")
        want_ids, want_mask = padded(ROWS, 0, "left", max_length=5)
        check(np.array_equal(ids, want_ids) and np.array_equal(mask, want_mask), f"left5 by hand:\n{ids}\n{mask}")
        tok.padding_side = "left"
        enc = tok(lines, padding="longest", truncation=True, max_length=5, return_tensors="np")
        check(np.array_equal(ids, enc["input_ids"]) and np.array_equal(mask, enc["attention_mask"]),
              "left5 vs the tokenizer")
        with h5py.File(out, "r") as f:
            check(sorted(f) == ["left5", "task1"], sorted(f))

        # 3. an existing group is refused and the file left as it was
        before = open(out, "rb").read()
        r = run(model, text, out, "task1", "--padding-side", "left")
        check(r.returncode == 1 and "exists" in r.stderr, f"overwrite not refused: {r.returncode} {r.stderr}")
        check(open(out, "rb").read() == before, "refused run changed the file")
        check(np.array_equal(read_group(out, "task1")[0], padded(ROWS, 0, "right")[0]), "task1 changed")

        # 4. a tokenizer without a pad token pads with its eos token
        nopad = os.path.join(tmp, "nopad")
        make_tokenizer(nopad, with_pad=False)
        check(AutoTokenizer.from_pretrained(nopad).pad_token_id is None, "nopad tokenizer has a pad token")
        out2 = os.path.join(tmp, "eos.h5")
        r = run(nopad, text, out2, "g")
        check(r.returncode == 0, f"tool failed: {r.stderr}")
        ids, mask, attrs = read_group(out2, "g")
        want_ids, want_mask = padded(ROWS, 3, "right")
        check(np.array_equal(ids, want_ids) and np.array_equal(mask, want_mask), f"eos pad:\n{ids}\n{mask}")
        check(attrs["pad_token_id"] == 3, attrs)

        # 5. a file of blank lines is an error
        blank = os.path.join(tmp, "blank.txt")
        with open(blank, "w") as f:
            f.write("\n  \n")
        r = run(model, blank, os.path.join(tmp, "none.h5"), "g")
        check(r.returncode == 1 and not os.path.exists(os.path.join(tmp, "none.h5")), "blank file accepted")
    print("test_tokenize_exemplars: 5 checks passed")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as e:
        print(f"FAIL: {e}")
        sys.exit(1)
