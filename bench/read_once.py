#!/usr/bin/env python3
"""The time to read a set of files once from the page cache: the floor for a merge that must read them.
One warming pass, then --passes timed passes (default 3); each pass reads every file in full, in order,
with read(2) calls of 16 MiB into one reused buffer (unbuffered, one thread; the copy from the page cache
is the cost). Prints every pass and the fastest; last line: `read_once: BYTES bytes in SECONDS s ...`.

  bench/read_once.py FILE... [--passes 3]
"""
import argparse
import os
import time

CHUNK = 16 << 20


def read_all(paths, buffer):
    total = 0
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            while True:
                n = os.readv(fd, [buffer])
                if n == 0:
                    break
                total += n
        finally:
            os.close(fd)
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+")
    ap.add_argument("--passes", type=int, default=3)
    a = ap.parse_args()
    buffer = bytearray(CHUNK)
    read_all(a.files, buffer)  # warm the page cache
    times = []
    for _ in range(a.passes):
        start = time.perf_counter()
        total = read_all(a.files, buffer)
        times.append(time.perf_counter() - start)
    best = min(times)
    print("read_once: passes " + ", ".join(f"{t:.3f}" for t in times) + " s")
    print(f"read_once: {total} bytes in {best:.3f} s ({total / best / 1e9:.2f} GB/s, fastest of {a.passes} "
          f"passes, {len(a.files)} files)")


if __name__ == "__main__":
    main()
