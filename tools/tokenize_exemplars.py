#!/usr/bin/env python3
"""Writes token exemplars for catmerge's llama-family features from a text file (a tool, not a runtime
dependency of catmerge; needs transformers, tokenizers, h5py and numpy).

    tools/tokenize_exemplars.py MODEL_DIR TEXT_FILE OUT.h5 GROUP [--max-length L] [--padding-side left|right]

One exemplar per non-empty line of TEXT_FILE (UTF-8; the line without its line ending; lines of only
whitespace are skipped), tokenized by AutoTokenizer.from_pretrained(MODEL_DIR) with the tokenizer's default
special tokens (e.g. BOS), truncated at L tokens when --max-length is given, padded to the longest sequence
on the chosen side (default: the tokenizer's own padding_side) with the tokenizer's pad token, or its eos
token when it has none. Written as GROUP/input_ids and GROUP/attention_mask, int64 [N, L] (mask 1 = real
token, 0 = padding), the layout catmerge reads (`exemplars: OUT.h5:/GROUP`). OUT.h5 is created or appended
to; an existing GROUP is never overwritten (exit 1). The group's attributes record the tokenizer directory,
the text file, the pad id and the padding side.
"""
import argparse
import os
import sys


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\r\n") for line in f]
    return [line for line in lines if line.strip()]


def tokenize(model_dir, lines, max_length=None, padding_side=None):
    """(input_ids, attention_mask, pad_id, padding_side): int64 numpy arrays [N, L]."""
    import numpy as np
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    if tok.pad_token_id is None:
        if tok.eos_token_id is None:
            raise SystemExit(f"{model_dir}: the tokenizer has neither a pad token nor an eos token")
        tok.pad_token = tok.eos_token
    if padding_side is not None:
        tok.padding_side = padding_side
    kwargs = {"truncation": True, "max_length": max_length} if max_length is not None else {}
    enc = tok(lines, padding="longest", return_tensors="np", **kwargs)
    ids = np.asarray(enc["input_ids"], dtype=np.int64)
    mask = np.asarray(enc["attention_mask"], dtype=np.int64)
    return ids, mask, int(tok.pad_token_id), tok.padding_side


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("text_file")
    ap.add_argument("out")
    ap.add_argument("group")
    ap.add_argument("--max-length", type=int, default=None)
    ap.add_argument("--padding-side", choices=("left", "right"), default=None)
    args = ap.parse_args(argv)
    if args.max_length is not None and args.max_length < 1:
        ap.error("--max-length must be at least 1")
    group = args.group.strip("/")
    if not group:
        ap.error("GROUP must name a group")

    lines = read_lines(args.text_file)
    if not lines:
        print(f"tokenize_exemplars: error: {args.text_file}: no non-empty line", file=sys.stderr)
        return 1
    import h5py
    if os.path.exists(args.out):
        with h5py.File(args.out, "r") as f:
            if group in f:
                print(f"tokenize_exemplars: error: {args.out}: group /{group} exists (not overwritten)",
                      file=sys.stderr)
                return 1
    ids, mask, pad_id, side = tokenize(args.model_dir, lines, args.max_length, args.padding_side)
    with h5py.File(args.out, "a") as f:
        g = f.create_group(group)
        g.create_dataset("input_ids", data=ids, track_times=False)
        g.create_dataset("attention_mask", data=mask, track_times=False)
        g.attrs["tokenizer"] = os.path.abspath(args.model_dir)
        g.attrs["text_file"] = os.path.abspath(args.text_file)
        g.attrs["pad_token_id"] = pad_id
        g.attrs["padding_side"] = side
    print(f"tokenize_exemplars: {args.out}:/{group}: {ids.shape[0]} sequences of {ids.shape[1]} tokens "
          f"({int(mask.sum())} real, pad id {pad_id}, {side} padding)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
