#!/usr/bin/env python3
"""The content hash catmerge records for every input file (README "Output format"), computed independently
with Python's xxhash package (Debian python3-xxhash): XXH3-128 of the XXH3-128 digests (16 bytes each,
big-endian) of the file's consecutive 256 KiB chunks.

  tools/reference/content_hash.py FILE...          print "<digest>  <file>" per file
  tools/reference/content_hash.py --fixtures        rewrite data/fixtures/io/content_hash.txt
"""
import os
import sys

import xxhash

CHUNK = 256 * 1024
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data", "fixtures", "io")
LIST = "content_hash.txt"


def content_hash(path):
    leaves = []
    with open(path, "rb") as f:
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            leaves.append(xxhash.xxh3_128(chunk).digest())
    return xxhash.xxh3_128(b"".join(leaves)).hexdigest()


def write_fixture_list(folder=FIXTURES):
    lines = []
    for root, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            if name == LIST:
                continue
            path = os.path.join(root, name)
            lines.append(f"{content_hash(path)}  {os.path.relpath(path, folder)}\n")
    with open(os.path.join(folder, LIST), "w") as f:
        f.writelines(lines)


def main():
    if sys.argv[1:] == ["--fixtures"]:
        write_fixture_list()
        return
    for path in sys.argv[1:]:
        print(f"{content_hash(path)}  {path}")


if __name__ == "__main__":
    main()
