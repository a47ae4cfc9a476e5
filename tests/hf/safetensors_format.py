#!/usr/bin/env python3
"""catmerge's HuggingFace-directory output (`output.format: safetensors`, `catmerge export`), read back
without catmerge: each shard parsed byte by byte here (8-byte little-endian header length N, N % 8 == 0, the
JSON header padded with spaces, `__metadata__`, data_offsets ordered and contiguous from 0 to the end of the
file, each tensor aligned to its element size, byte size = dtype x shape) and again with the `safetensors`
package (safe_open, numpy; BF16, which numpy cannot hold, compared as raw bytes).

For hf_task_arithmetic, hf_cat, llama_task_arithmetic, qwen2_cat, mistral_cat (bf16) and clip_full
task_arithmetic (hf_task_arithmetic's experts and method on data/fixtures/clip_full: CLIPModel checkpoints whose
text tower the clip_vit merge does not cover), each merged with a shard_size that gives several shards:
- the shards are model-00001-of-0000N.safetensors .. N, with no shard holding more than shard_size bytes of
  tensors unless it holds a single tensor; model.safetensors.index.json maps exactly the shards' tensors to
  their shards and its metadata.total_size is the sum of their bytes;
- every shard's __metadata__ has format "pt", and catmerge_version, method and hyperparameters (JSON text) equal
  to the root attributes of the HDF5 output of the same merge;
- the directory holds exactly the base's tensors (a tied base has no lm_head, nor has the output); every merged
  tensor equals catmerge's HDF5 output of the same merge bit for bit (same dtype), and the reference's expected
  output (data/fixtures/expected/<case>.h5) bit for bit for task_arithmetic, within the tolerance of
  docs/DESIGN.md (1e-5 relative, one unit in the last place for 16-bit values) for cat; every tensor the
  merge does not cover (clip_full's text tower and logit_scale) equals the base's bit for bit;
- config.json is the base's with torch_dtype (and dtype where the base has it, top level or in a sub-config
  such as text_config) set to the output dtype; every other file of the base that is neither a weight file
  nor hidden (clip_full: preprocessor_config.json, tokenizer_config.json, special_tokens_map.json,
  chat_template.jinja; the llama family: generation_config.json) is copied byte for byte, and nothing else is
  there (no .gitattributes).
`catmerge export` of the committed expected/hf_task_arithmetic.h5 (no attributes) with --base clip_hf/base gives
a directory holding its tensors bit for bit; export of the clip_full merge's HDF5 output with --base
clip_full/base --dtype f16 gives every tensor (text tower included) rounded to float16 and torch_dtype float16.

Before any of that, the checker itself is run on files the safetensors package wrote (and on a corrupted one,
which it must reject), so a failure below is catmerge's.

  safetensors_format.py CATMERGE_BINARY

Exit 0: passed, 1: failed, 77: skipped (numpy, h5py or safetensors missing). Each check prints "ok ..." or
"FAIL ..."; the last line is "N passed, M failed"."""
import copy
import json
import os
import struct
import subprocess
import sys
import tempfile

SKIP = 77
SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(SOURCE, "tests", "mpi"))
sys.path.insert(0, os.path.join(SOURCE, "tests"))
try:
    import h5py
    import numpy as np
    import safetensors  # noqa: F401
except ImportError as e:   # the Python stack is optional for catmerge's tests
    print(f"SKIP: the Python package '{e.name}' is not installed; this test reads catmerge's HDF5 output with "
          f"h5py and numpy and its shards with the safetensors package")
    sys.exit(SKIP)

from checks import Checks  # noqa: E402
from common import FIXTURES, Tensor, cases, max_relative_error, tensors, write_case_config  # noqa: E402

ITEMSIZE = {"F32": 4, "F16": 2, "BF16": 2}
KIND = {"f32": "F32", "f16": "F16", "bf16": "BF16"}          # common.Tensor.kind -> safetensors dtype
DTYPE_NAME = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}
# Merges whose result catmerge and the reference compute in the same float32 order: bit for bit.
EXACT_METHODS = ("task_arithmetic", "weight_average")
# case -> (shard_size as written in the configuration, in bytes): several shards each.
SHARDING = {"hf_task_arithmetic": ("20KB", 20000),
            "hf_cat": ("20KiB", 20480),
            "llama_task_arithmetic": (20000, 20000),
            "qwen2_cat": ("50KB", 50000),
            "mistral_cat": ("40KiB", 40960),
            "clip_full_task_arithmetic": ("24KB", 24000)}
WEIGHT_INDEX = "model.safetensors.index.json"
WEIGHT_EXTENSIONS = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf", ".onnx")


def is_weight_file(name):
    """A checkpoint file or its index (model.safetensors, pytorch_model.bin.index.json, ...): not copied."""
    stem = name[:-len(".index.json")] if name.endswith(".index.json") else name
    return stem.endswith(WEIGHT_EXTENSIONS)


class Report(Checks):
    """tests/checks.py's tally, printing every check as it is made."""

    def __call__(self, ok, what, detail=""):
        print(f"ok {what}" if ok else f"FAIL {what}{': ' + detail if detail else ''}", flush=True)
        super().__call__(ok, what + (f": {detail}" if detail and not ok else ""))


def clip_full_case(all_cases=None):
    """hf_task_arithmetic's experts and method on the clip_full CLIPModel checkpoints; the vision tower it
    merges is clip_hf's bit for bit, so its expected output is expected/hf_task_arithmetic.h5."""
    case = copy.deepcopy(next(c for c in (all_cases or cases()) if c["name"] == "hf_task_arithmetic"))
    case["name"] = "clip_full_task_arithmetic"
    cfg = case["config"]
    cfg["model"]["base"] = cfg["model"]["base"].replace("clip_hf/", "clip_full/")
    for e in cfg["experts"]:
        e["path"] = e["path"].replace("clip_hf/", "clip_full/")
    cfg["output"]["path"] = "out/clip_full_task_arithmetic.h5"
    return case


def named_cases(names):
    """The cases of cases.json with these names, plus clip_full_task_arithmetic, in the order given."""
    all_cases = cases()
    by_name = {c["name"]: c for c in all_cases}
    by_name["clip_full_task_arithmetic"] = clip_full_case(all_cases)
    return [by_name[n] for n in names]


def base_dir(case):
    return os.path.join(FIXTURES, case["config"]["model"]["base"])


def merge(binary, case, folder, tag, output):
    """catmerge run of the case with `output` (dict) as its output section; the output path is
    folder/<case>-<tag>[.h5]. Returns (path, CompletedProcess)."""
    case = copy.deepcopy(case)
    case["name"] = f"{case['name']}-{tag}"
    case["config"]["output"] = dict(output)
    path = os.path.join(folder, case["name"] + ("" if output.get("format") == "safetensors" else ".h5"))
    cfg = write_case_config(case, folder, path)
    proc = subprocess.run([binary, "run", cfg], capture_output=True, text=True, timeout=600)
    return path, proc


def stderr_of(proc):
    """The last lines of a run's stderr, on one line."""
    return " | ".join(proc.stderr.strip().splitlines()[-3:])


def root_attrs(path):
    with h5py.File(path, "r") as f:
        return {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in f.attrs.items()}


# ---------------------------------------------------------------------------------------------------------
# The shard parser: everything from the bytes, nothing from catmerge or the safetensors package.

class Shard:
    def __init__(self):
        self.problems = {}      # check name -> first problem found
        self.header_len = None
        self.metadata = None
        self.entries = {}       # name -> (dtype, shape, begin, end), offsets relative to the data start
        self.data = b""

    def fail(self, what, detail):
        self.problems.setdefault(what, detail)

    def tensor(self, name):
        """(dtype, shape, raw bytes)."""
        dtype, shape, begin, end = self.entries[name]
        return dtype, shape, self.data[begin:end]


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError(f"duplicate keys {sorted({k for k in keys if keys.count(k) > 1})}")
    return dict(pairs)


def parse_shard(path):
    """Parses a .safetensors file; problems are filed under 'header', 'metadata' and 'layout'."""
    s = Shard()
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        s.fail("header", f"{len(blob)} bytes, shorter than the header length")
        return s
    n = struct.unpack("<Q", blob[:8])[0]
    s.header_len = n
    if n % 8:
        s.fail("header", f"header length {n} is not a multiple of 8 (data would start at {8 + n})")
    if 8 + n > len(blob):
        s.fail("header", f"header length {n} runs past the end of the {len(blob)}-byte file")
        return s
    raw = blob[8:8 + n]
    text = raw.rstrip(b" ")
    if not text.startswith(b"{") or not text.endswith(b"}"):
        s.fail("header", f"header is not a JSON object padded with spaces: {raw[:40]!r} .. {raw[-40:]!r}")
        return s
    try:
        header = json.loads(text.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as e:
        s.fail("header", f"header is not valid JSON: {e}")
        return s
    s.data = blob[8 + n:]
    s.metadata = header.pop("__metadata__", None)
    if not isinstance(s.metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                   for k, v in s.metadata.items()):
        s.fail("metadata", f"__metadata__ is not a map of strings: {s.metadata!r}")
        s.metadata = s.metadata if isinstance(s.metadata, dict) else {}
    elif s.metadata.get("format") != "pt":
        s.fail("metadata", f"__metadata__.format is {s.metadata.get('format')!r}, not 'pt'")
    for name, e in header.items():
        if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
            s.fail("layout", f"{name}: entry {e!r} is not {{dtype, shape, data_offsets}}")
            continue
        dtype, shape, offsets = e["dtype"], e["shape"], e["data_offsets"]
        if dtype not in ITEMSIZE:
            s.fail("layout", f"{name}: dtype {dtype!r} (catmerge writes F32, F16, BF16)")
            continue
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            s.fail("layout", f"{name}: shape {shape!r}")
            continue
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
                and 0 <= offsets[0] <= offsets[1]):
            s.fail("layout", f"{name}: data_offsets {offsets!r}")
            continue
        size = ITEMSIZE[dtype] * int(np.prod(shape, dtype=np.int64))
        if offsets[1] - offsets[0] != size:
            s.fail("layout", f"{name}: {offsets[1] - offsets[0]} bytes for {dtype} {shape} ({size} bytes)")
        if offsets[0] % ITEMSIZE[dtype]:
            s.fail("layout", f"{name}: offset {offsets[0]} is not a multiple of its element size {ITEMSIZE[dtype]}")
        s.entries[name] = (dtype, tuple(shape), offsets[0], offsets[1])
    at = 0
    for name, (_, _, begin, end) in sorted(s.entries.items(), key=lambda kv: (kv[1][2], kv[1][3])):
        if begin != at:
            s.fail("layout", f"{name} starts at {begin}, the previous tensor ends at {at} "
                             f"({'gap' if begin > at else 'overlap'})")
        at = max(at, end)
    if at != len(s.data):
        s.fail("layout", f"the tensors end at {at}, the data at {len(s.data)} (the file's end)")
    return s


def read_checkpoint(directory):
    """name -> (dtype, shape, raw) of an HF directory (model.safetensors or an index and its shards)."""
    index = os.path.join(directory, WEIGHT_INDEX)
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    out = {}
    for name in files:
        s = parse_shard(os.path.join(directory, name))
        assert not s.problems, (directory, name, s.problems)
        out.update({k: s.tensor(k) for k in s.entries})
    return out


def decoded(dtype, shape, raw):
    """A common.Tensor (values as float64) of raw little-endian bytes."""
    if dtype == "BF16":
        values = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
    else:
        values = np.frombuffer(raw, "<f4" if dtype == "F32" else "<f2")
    kind = {v: k for k, v in KIND.items()}[dtype]
    return Tensor(raw, values.astype(np.float64).reshape(shape), kind)


def h5_entries(path):
    """name -> (dtype, shape, raw) of a catmerge/reference HDF5 file, via common.tensors (h5py)."""
    return {n: (KIND[t.kind], tuple(t.values.shape), t.raw) for n, t in tensors(path).items()}


# ---------------------------------------------------------------------------------------------------------
# The checks of one output directory.

def check_directory(check, label, out, base, limit, out_dtype, attrs=None):
    """Checks the layout of the HF directory `out` (shards, index, metadata, config.json, copied files) and
    returns name -> (dtype, shape, raw) of every tensor in it (None if it is no directory). attrs: the root
    attributes of the HDF5 output of the same merge (the metadata must agree with them); None: only
    format "pt" is required."""
    if not os.path.isdir(out):
        check(False, f"{label}: output directory exists", f"{out} is missing")
        return None
    files = sorted(os.listdir(out))
    shards = sorted(f for f in files if f.endswith(".safetensors"))
    n = len(shards)
    want_shards = [f"model-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)]
    check(n >= 2 and shards == want_shards, f"{label}: {n} shards named model-0000i-of-{n:05d}.safetensors",
          f"shards {shards}")
    parsed = {}
    for name in shards:
        s = parse_shard(os.path.join(out, name))
        parsed[name] = s
        for what in ("header", "metadata", "layout"):
            desc = {"header": f"header length {s.header_len} a multiple of 8, JSON padded with spaces",
                    "metadata": "__metadata__.format is 'pt'",
                    "layout": f"{len(s.entries)} tensors contiguous from 0 to the end, aligned, sized by dtype x shape"}
            check(what not in s.problems, f"{label}: {name}: {desc[what]}", s.problems.get(what, ""))
        nbytes = sum(e[3] - e[2] for e in s.entries.values())
        check(nbytes <= limit or len(s.entries) == 1,
              f"{label}: {name}: {nbytes} tensor bytes within shard_size {limit} (or a single tensor)",
              f"{len(s.entries)} tensors, {nbytes} bytes")
    everything, duplicated = {}, []
    for name, s in parsed.items():
        for k in s.entries:
            if k in everything:
                duplicated.append(k)
            everything[k] = name
    check(not duplicated, f"{label}: no tensor in two shards", f"{duplicated[:3]}")

    # The index.
    try:
        with open(os.path.join(out, WEIGHT_INDEX)) as f:
            index = json.load(f)
    except (OSError, ValueError) as e:
        check(False, f"{label}: {WEIGHT_INDEX} is valid JSON", str(e))
        index = {}
    index = index if isinstance(index, dict) else {}
    weight_map = index.get("weight_map") if isinstance(index.get("weight_map"), dict) else {}
    wrong = sorted(set(map(str, weight_map.items())) ^ set(map(str, everything.items())))
    check(weight_map == everything, f"{label}: index weight_map maps exactly the shards' {len(everything)} tensors "
          f"to their shards", f"{len(weight_map)} entries; differ at {wrong[:3]}")
    total = sum(e[3] - e[2] for s in parsed.values() for e in s.entries.values())
    index_meta = index.get("metadata") if isinstance(index.get("metadata"), dict) else {}
    got_total = index_meta.get("total_size")
    check(got_total == total, f"{label}: index metadata.total_size = {total}", f"{got_total!r}")

    # Metadata: the same in every shard, and as the HDF5 output records the merge.
    metas = [s.metadata for s in parsed.values()]
    meta = metas[0] if metas else {}
    check(all(m == meta for m in metas), f"{label}: every shard carries the same __metadata__", f"{metas[:2]}")
    if attrs is None:
        check(meta.get("format") == "pt", f"{label}: __metadata__ {sorted(meta)}", f"{meta!r}")
    else:
        for key in ("catmerge_version", "method"):
            check(meta.get(key) == attrs.get(key), f"{label}: __metadata__.{key} = {attrs.get(key)!r}",
                  f"{meta.get(key)!r}")
        try:
            hp = json.loads(meta.get("hyperparameters", ""))
        except ValueError as e:
            hp = f"not JSON: {e}"
        want_hp = json.loads(attrs.get("hyperparameters", "{}"))
        check(isinstance(hp, dict) and hp == want_hp,
              f"{label}: __metadata__.hyperparameters is the JSON object {json.dumps(want_hp)}", f"{hp!r}")

    # config.json and the files copied from the base.
    with open(os.path.join(base, "config.json")) as f:
        want_cfg = json.load(f)
    want_cfg["torch_dtype"] = out_dtype
    if "dtype" in want_cfg:
        want_cfg["dtype"] = out_dtype
    for key, sub in want_cfg.items():   # a composite model's sub-configs (text_config, ...) that name a dtype
        if isinstance(sub, dict):
            want_cfg[key] = {k: out_dtype if k in ("torch_dtype", "dtype") else v for k, v in sub.items()}
    try:
        with open(os.path.join(out, "config.json")) as f:
            got_cfg = json.load(f)
    except (OSError, ValueError) as e:
        got_cfg = f"unreadable: {e}"
    diff = sorted(k for k in set(want_cfg) | set(got_cfg if isinstance(got_cfg, dict) else {})
                  if not isinstance(got_cfg, dict) or got_cfg.get(k, "<absent>") != want_cfg.get(k, "<absent>"))
    check(isinstance(got_cfg, dict) and not diff,
          f"{label}: config.json is the base's with torch_dtype{' and dtype' if 'dtype' in want_cfg else ''} "
          f"{out_dtype}", f"{got_cfg}" if not isinstance(got_cfg, dict) else
          f"keys {diff}: {[(k, got_cfg.get(k), want_cfg.get(k)) for k in diff[:3]]}")
    copied = sorted(f for f in os.listdir(base) if os.path.isfile(os.path.join(base, f)) and not f.startswith(".")
                    and f != "config.json" and not is_weight_file(f))
    for name in copied:
        with open(os.path.join(base, name), "rb") as f:
            want = f.read()
        path = os.path.join(out, name)
        got = open(path, "rb").read() if os.path.isfile(path) else None
        check(got == want, f"{label}: {name} copied from the base byte for byte",
              "missing" if got is None else f"{len(got)} bytes, the base's {len(want)}")
    hidden = sorted(f for f in os.listdir(base) if f.startswith("."))
    for name in hidden:
        check(not os.path.exists(os.path.join(out, name)), f"{label}: hidden {name} of the base not copied")
    expected_files = sorted(want_shards + [WEIGHT_INDEX, "config.json"] + copied)
    check(files == expected_files, f"{label}: the directory holds the shards, the index, config.json"
          f"{' and ' + ', '.join(copied) if copied else ''}, nothing else",
          f"extra {sorted(set(files) - set(expected_files))}, missing {sorted(set(expected_files) - set(files))}")

    # The safetensors package reads every shard to what the parser read.
    from safetensors import safe_open
    for name, s in parsed.items():
        problems = []
        try:
            with safe_open(os.path.join(out, name), framework="numpy") as f:
                if sorted(f.keys()) != sorted(s.entries):
                    problems.append(f"keys {sorted(set(f.keys()) ^ set(s.entries))[:3]}")
                if (f.metadata() or {}) != (s.metadata or {}):
                    problems.append(f"metadata {f.metadata()}")
                for k, (dtype, shape, begin, end) in s.entries.items():
                    if dtype == "BF16":   # numpy has no bfloat16: compared as the raw bytes parsed above
                        continue
                    t = f.get_tensor(k)
                    if t.dtype != np.dtype("<f4" if dtype == "F32" else "<f2") or t.shape != shape or \
                            np.ascontiguousarray(t).tobytes() != s.data[begin:end]:
                        problems.append(f"{k}: {t.dtype} {t.shape}")
        except Exception as e:   # noqa: BLE001 (any refusal of the library is the finding)
            problems.append(f"{type(e).__name__}: {e}")
        check(not problems, f"{label}: {name}: safetensors.safe_open reads the same tensors and metadata",
              "; ".join(problems[:3]))
    return {k: s.tensor(k) for s in parsed.values() for k in s.entries}


def check_tensors(check, label, got, want, what, exact=True):
    """Every tensor of `want` is in `got` with the same dtype and shape, and the same bytes (exact) or within
    docs/DESIGN.md's tolerance."""
    missing = sorted(set(want) - set(got))
    check(not missing, f"{label}: the {len(want)} tensors of {what} are in the output", f"missing {missing[:3]}")
    common_names = [k for k in want if k in got]
    bad_type = [k for k in common_names if got[k][:2] != want[k][:2]]
    check(not bad_type, f"{label}: dtypes and shapes as in {what}",
          f"{[(k, got[k][:2], want[k][:2]) for k in bad_type[:3]]}")
    names = [k for k in common_names if k not in bad_type]
    differ = [k for k in names if got[k][2] != want[k][2]]
    if exact:
        check(not differ, f"{label}: {len(names)} tensors equal {what} bit for bit",
              f"{len(differ)} differ, first {differ[:3]}")
    else:
        err = max_relative_error({k: decoded(*got[k]) for k in names}, {k: decoded(*want[k]) for k in names})
        check(err <= 1e-5, f"{label}: {len(names)} tensors within 1e-5 relative (1 ulp for 16-bit) of {what} "
              f"({len(names) - len(differ)} bit for bit, max error {err:.2g})", f"max relative error {err:.3g}")


def check_case(check, binary, case, tmp):
    name = case["name"]
    base = base_dir(case)
    size, limit = SHARDING[name]
    hdf5_output = {"path": "", "dtype": "base"}
    if name == "hf_task_arithmetic":
        hdf5_output["format"] = "hdf5"
    h5_path, proc = merge(binary, case, tmp, "h5", hdf5_output)
    check(proc.returncode == 0, f"{name}: catmerge run to HDF5", stderr_of(proc))
    out, proc = merge(binary, case, tmp, "st", {"path": "", "format": "safetensors", "shard_size": size,
                                                "dtype": "base"})
    check(proc.returncode == 0, f"{name}: catmerge run to safetensors (shard_size {size!r})", stderr_of(proc))
    if not os.path.exists(h5_path) or proc.returncode != 0:
        return
    merged = h5_entries(h5_path)
    base_tensors = read_checkpoint(base)
    dtypes = {d for d, _, _ in merged.values()}
    out_dtype = DTYPE_NAME[dtypes.pop()] if len(dtypes) == 1 else f"mixed {dtypes}"
    got = check_directory(check, name, out, base, limit, out_dtype, root_attrs(h5_path))
    if got is None:
        return
    tied = "model.norm.weight" in base_tensors and "lm_head.weight" not in base_tensors
    check(set(got) == set(base_tensors), f"{name}: the output holds exactly the base's {len(base_tensors)} tensors"
          f"{' (tied: no lm_head.weight)' if tied else ''}",
          f"extra {sorted(set(got) - set(base_tensors))[:3]}, missing {sorted(set(base_tensors) - set(got))[:3]}")
    check_tensors(check, name, got, merged, "catmerge's HDF5 output of the same merge")
    expected = h5_entries(os.path.join(FIXTURES, case["expected"]))
    check(set(expected) == set(merged), f"{name}: the HDF5 output merges the reference's {len(expected)} tensors")
    check_tensors(check, name, got, expected, case["expected"],
                  exact=case["config"]["method"]["name"] in EXACT_METHODS)
    rest = {k: v for k, v in base_tensors.items() if k not in merged}
    if rest:
        check_tensors(check, name, got, rest, f"the base (not merged: {sorted(rest)[0]} ..)")
    return h5_path


def check_export(check, binary, tmp, clip_full_h5):
    # The committed expected output, which has no attributes: --base gives the config and copied files.
    src = os.path.join(FIXTURES, "expected", "hf_task_arithmetic.h5")
    out = os.path.join(tmp, "export-hf_task_arithmetic")
    base = os.path.join(FIXTURES, "clip_hf", "base")
    proc = subprocess.run([binary, "export", src, out, "--base", base, "--shard-size", "20KB"],
                          capture_output=True, text=True, timeout=600)
    label = "export expected/hf_task_arithmetic.h5"
    check(proc.returncode == 0, f"{label} --base clip_hf/base --shard-size 20KB", stderr_of(proc))
    if proc.returncode == 0:
        got = check_directory(check, label, out, base, 20000, "float32")
        if got is not None:
            want = h5_entries(src)
            check(set(got) == set(want), f"{label}: exactly the file's {len(want)} tensors",
                  f"{sorted(set(got) ^ set(want))[:3]}")
            check_tensors(check, label, got, want, "the HDF5 file")
    if clip_full_h5 is None:
        return
    # A catmerge output, to float16, with a base whose text tower it does not hold.
    out = os.path.join(tmp, "export-clip_full-f16")
    base = os.path.join(FIXTURES, "clip_full", "base")
    proc = subprocess.run([binary, "export", clip_full_h5, out, "--base", base, "--shard-size", "30KiB",
                           "--dtype", "f16"], capture_output=True, text=True, timeout=600)
    label = "export clip_full merge --dtype f16"
    check(proc.returncode == 0, f"{label} --base clip_full/base --shard-size 30KiB", stderr_of(proc))
    if proc.returncode == 0:
        got = check_directory(check, label, out, base, 30720, "float16", root_attrs(clip_full_h5))
        if got is not None:
            want = dict(read_checkpoint(base), **h5_entries(clip_full_h5))
            want = {k: ("F16", shape, np.frombuffer(raw, "<f4").astype("<f2").tobytes())   # numpy rounds RNE
                    for k, (dtype, shape, raw) in want.items()}
            check(set(got) == set(want), f"{label}: exactly the base's {len(want)} tensors",
                  f"{sorted(set(got) ^ set(want))[:3]}")
            check_tensors(check, label, got, want, "the merge and the base rounded to float16")


def self_test(check, tmp):
    """The checker accepts what the safetensors package writes and rejects a damaged copy."""
    from safetensors.numpy import save_file
    folder = os.path.join(tmp, "selftest")
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    state = {"b.scale": np.array(2.5, np.float32), "a.weight": rng.standard_normal((5, 3)).astype(np.float32),
             "c.half": rng.standard_normal(7).astype(np.float16)}
    path = os.path.join(folder, "x.safetensors")
    save_file(state, path, metadata={"format": "pt"})
    s = parse_shard(path)
    ok = not s.problems and set(s.entries) == set(state) and all(
        s.tensor(k)[2] == v.tobytes() and s.tensor(k)[1] == v.shape for k, v in state.items())
    check(ok, "checker: a file written by safetensors.numpy.save_file parses to its tensors", f"{s.problems}")
    with open(path, "rb") as f:
        blob = bytearray(f.read())
    n = struct.unpack("<Q", blob[:8])[0]
    for damage, blob2 in (("a truncated file", blob[:-2]),
                          ("a header length not a multiple of 8", struct.pack("<Q", n - 1) + blob[8:])):
        bad = os.path.join(folder, "bad.safetensors")
        with open(bad, "wb") as f:
            f.write(blob2)
        check(bool(parse_shard(bad).problems), f"checker: rejects {damage}")
    # HF's own sharded directories (save_pretrained) pass the layout checks.
    for d in ("clip_hf/expert2", "llama/expert3"):
        directory = os.path.join(FIXTURES, d)
        problems = {f: parse_shard(os.path.join(directory, f)).problems for f in sorted(os.listdir(directory))
                    if f.endswith(".safetensors")}
        check(not any(problems.values()), f"checker: the shards transformers wrote in {d} parse cleanly", f"{problems}")


def main():
    binary = os.path.abspath(sys.argv[1])
    check = Report()
    with tempfile.TemporaryDirectory() as tmp:
        self_test(check, tmp)
        clip_full_h5 = None
        for case in named_cases(list(SHARDING)):
            h5 = check_case(check, binary, case, tmp)
            if case["name"] == "clip_full_task_arithmetic":
                clip_full_h5 = h5
        check_export(check, binary, tmp, clip_full_h5)
    check.finish()


if __name__ == "__main__":
    main()
