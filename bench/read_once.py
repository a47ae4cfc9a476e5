#!/usr/bin/env python3
"""The time to read a set of files once from the page cache: the floor for a merge that must read them.
One warming pass, then --passes timed passes (default 3); each pass reads every file in full, in order,
with read(2) calls of 16 MiB into one reused buffer (unbuffered, one thread; the copy from the page cache
is the cost). Prints every pass and the fastest; then `read_once: BYTES bytes in SECONDS s ...`.
With --write BYTES PATH, also the floor of writing a merged model: BYTES written to a new file PATH (removed
before each pass and at the end) with 16 MiB write(2) calls from the same buffer; last line
`write_once: BYTES bytes in SECONDS s ...` with the first pass and the fastest. On the virtual machine of
docs/BENCHMARKS.md a new file's first write can run at 0.4 GB/s and later ones at 3-4 GB/s: the first takes
page-cache pages the host has not backed yet, the later ones reuse the pages the previous pass freed. A
merge's output write lands anywhere between the two, so this is context for its time, not a floor.

  bench/read_once.py FILE... [--passes 3] [--write BYTES PATH]
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


def write_new(path, size, buffer):
    if os.path.exists(path):
        os.remove(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        left = size
        while left > 0:
            left -= os.write(fd, memoryview(buffer)[:min(left, len(buffer))])
    finally:
        os.close(fd)


def fastest(passes, run):
    times = []
    for _ in range(passes):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times, min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--write", nargs=2, metavar=("BYTES", "PATH"))
    a = ap.parse_args()
    buffer = bytearray(CHUNK)
    total = read_all(a.files, buffer)  # warms the page cache
    times, best = fastest(a.passes, lambda: read_all(a.files, buffer))
    print("read_once: passes " + ", ".join(f"{t:.3f}" for t in times) + " s")
    print(f"read_once: {total} bytes in {best:.3f} s ({total / best / 1e9:.2f} GB/s, fastest of {a.passes} "
          f"passes, {len(a.files)} files)")
    if a.write:
        size, path = int(a.write[0]), a.write[1]
        try:
            times, best = fastest(a.passes, lambda: write_new(path, size, buffer))
        finally:
            if os.path.exists(path):
                os.remove(path)
        print("write_once: passes " + ", ".join(f"{t:.3f}" for t in times) + " s")
        print(f"write_once: {size} bytes in {times[0]:.3f} s ({size / times[0] / 1e9:.2f} GB/s, the first pass, "
              f"new file; fastest {best:.3f} s)")


if __name__ == "__main__":
    main()
