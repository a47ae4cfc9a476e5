"""Philox4x32-10 and FNV-1a 64, transcribed from kernels/philox.hpp and src/common/hash.hpp with Python ints.

DARE's keep decision (docs/DESIGN.md): counter = (lo32(i), hi32(i), expert index k (0-based), seed),
key = (lo32(h), hi32(h)), h = FNV-1a 64 of the tensor name (UTF-8), i = flat element index in the whole
checkpoint tensor; keep when word0 * 2^-32 >= p (float64).
"""

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF


def fnv1a64(name: str) -> int:
    h = 0xCBF29CE484222325
    for byte in name.encode("utf-8"):
        h ^= byte
        h = (h * 0x100000001B3) & M64
    return h


def mulhilo(a: int, b: int):
    p = a * b
    return (p >> 32) & M32, p & M32


def philox4x32_10(ctr, key):
    c0, c1, c2, c3 = ctr
    k0, k1 = key
    for _ in range(10):
        hi0, lo0 = mulhilo(0xD2511F53, c0)
        hi1, lo1 = mulhilo(0xCD9E8D57, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = (k0 + 0x9E3779B9) & M32
        k1 = (k1 + 0xBB67AE85) & M32
    return c0, c1, c2, c3


def dare_keep(name_hash: int, expert: int, seed: int, index: int, p: float) -> bool:
    ctr = (index & M32, (index >> 32) & M32, expert & M32, seed & M32)
    key = (name_hash & M32, (name_hash >> 32) & M32)
    word0 = philox4x32_10(ctr, key)[0]
    return float(word0) * 2.0 ** -32 >= p


def dare_mask(name: str, expert: int, seed: int, numel: int, p: float, offset: int = 0):
    """Keep mask (list of bools) of elements offset .. offset+numel-1 of tensor `name`."""
    h = fnv1a64(name)
    return [dare_keep(h, expert, seed, offset + j, p) for j in range(numel)]


def self_test():
    # Random123 known-answer test (kat_vectors: philox4x32_10, ctr 0, key 0).
    got = philox4x32_10((0, 0, 0, 0), (0, 0))
    want = (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)
    assert got == want, [hex(x) for x in got]
    # Random123 known-answer test: ctr all ones, key all ones.
    got = philox4x32_10((M32, M32, M32, M32), (M32, M32))
    want = (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)
    assert got == want, [hex(x) for x in got]
    # Random123 known-answer test: pi digits.
    got = philox4x32_10((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0))
    want = (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)
    assert got == want, [hex(x) for x in got]
    # FNV-1a 64 reference values.
    assert fnv1a64("") == 0xCBF29CE484222325
    assert fnv1a64("a") == 0xAF63DC4C8601EC8C
    assert fnv1a64("foobar") == 0x85944171F73967E8


if __name__ == "__main__":
    self_test()
    print("philox/fnv self-test ok")
