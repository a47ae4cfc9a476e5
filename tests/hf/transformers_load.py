#!/usr/bin/env python3
"""catmerge's HuggingFace-directory output (`output.format: safetensors`) loads in `transformers` as the
merged model: for hf_task_arithmetic (CLIPVisionModelWithProjection), clip_full task_arithmetic (CLIPModel: the
vision tower merged, the text tower the base's), llama_task_arithmetic, llama3_rope_cat (tied embeddings),
qwen2_cat (tied, q/k/v biases) and mistral_cat (bf16), each merged to a directory of several shards:

- the class config.json names (for the causal LMs AutoModelForCausalLM) loads it with no missing, unexpected or
  mismatched keys and no error messages; AutoModel (the bare model) with none missing or mismatched and
  exactly the unexpected keys it reports for the base directory itself (the head it has no place for:
  visual_projection.weight, an untied lm_head.weight);
- loaded in float32, its parameters equal, bit for bit, the base's parameters with catmerge's HDF5 output of
  the same merge in place of the merged ones; against the reference (the base's class from the base directory
  with data/fixtures/expected/<case>.h5 loaded into its state dict, strict about names; for clip_full
  expected/hf_task_arithmetic.h5 for the vision tower, the base for the rest), bit for bit for
  task_arithmetic, within docs/DESIGN.md's tolerance for cat (1e-5 relative, one unit in the last place for
  bf16); a tied model's lm_head is its embedding;
- on fixed seeded inputs (pixel_values [2, 3, 16, 16]; input_ids [2, 8], qwen2 and CLIP text with padding in
  the attention mask) every output (last_hidden_state, pooler_output, image_embeds, text_embeds, logits, ...)
  agrees with the reference's within 1e-5 relative (max |a - b| / max |b|), float32; AutoModel's bare model
  agrees with the reference's inner model;
- loaded without a dtype, the parameters are in the stored dtype (mistral: bfloat16), which is also what the
  shards' headers say.

  transformers_load.py CATMERGE_BINARY

Exit 0: passed, 1: failed, 77: skipped (torch, transformers, safetensors, numpy or h5py missing). Each check
prints "ok ..." or "FAIL ..."; the last line is "N passed, M failed"."""
import json
import os
import sys
import tempfile

SKIP = 77
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import h5py  # noqa: F401
    import numpy as np
    import safetensors  # noqa: F401
    import torch
    import transformers
except ImportError as e:   # the Python ML stack is optional for catmerge's tests
    print(f"SKIP: the Python package '{e.name}' is not installed; this test loads catmerge's safetensors output "
          f"with transformers (torch) and reads the expected HDF5 outputs with h5py")
    sys.exit(SKIP)
from safetensors import safe_open  # noqa: E402
from transformers import AutoModel, AutoModelForCausalLM  # noqa: E402

from safetensors_format import EXACT_METHODS, Report, base_dir, merge, named_cases, stderr_of  # noqa: E402
from common import FIXTURES, Tensor, max_relative_error, tensors  # noqa: E402  (tests/mpi, put on the path above)

torch.set_num_threads(1)
transformers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()

# case -> shard_size (several shards each)
CASES = {"hf_task_arithmetic": "20KB", "clip_full_task_arithmetic": "24KB", "llama_task_arithmetic": "20KB",
         "llama3_rope_cat": "64KB", "qwen2_cat": "50KB", "mistral_cat": "40KiB"}
TORCH_DTYPE = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
ST_DTYPE = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}
TOLERANCE = 1e-5


def base_config(case):
    with open(os.path.join(base_dir(case), "config.json")) as f:
        return json.load(f)


def model_class(case):
    return getattr(transformers, base_config(case)["architectures"][0])


def is_causal(case):
    return base_config(case)["architectures"][0].endswith("ForCausalLM")


def load(loader, path, **kwargs):
    """(model in eval mode, loading info)."""
    model, info = loader.from_pretrained(path, output_loading_info=True, **kwargs)
    return model.eval(), info


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.numpy().tobytes() == b.numpy().tobytes()


def as_f32(t):
    return torch.from_numpy(np.ascontiguousarray(t.values.astype(np.float32)))


def reference(check, case, merged, what):
    """The base's class from the base directory, in float32, with `merged` (name -> common.Tensor) in its
    state dict (every name must be one of its tensors)."""
    model, _ = load(model_class(case), base_dir(case), dtype=torch.float32)
    sd = model.state_dict()
    unknown = sorted(set(merged) - set(sd))
    check(not unknown, f"{case['name']}: reference: every tensor of {what} is a tensor of {type(model).__name__}",
          f"not: {unknown[:3]}")
    ptr = {k: v.data_ptr() for k, v in sd.items()}
    for name, t in merged.items():
        if name in sd:
            sd[name] = as_f32(t)
            for alias in [k for k in sd if k not in merged and ptr[k] == ptr[name]]:   # tied: lm_head
                sd[alias] = sd[name]
    model.load_state_dict(sd, strict=True)
    return model


def inputs(case, model):
    g = torch.Generator().manual_seed(1234)
    cfg = model.config
    if type(model).__name__.startswith("CLIP"):
        x = {"pixel_values": torch.randn((2, 3, 16, 16), generator=g, dtype=torch.float32)}
        if hasattr(cfg, "text_config"):   # CLIPModel: [bos, words, eos] and a padded shorter row
            text = cfg.text_config
            ids = torch.randint(1, text.bos_token_id, (2, 8), generator=g)
            ids[:, 0] = text.bos_token_id
            ids[0, 7] = text.eos_token_id
            ids[1, 4:] = text.eos_token_id
            mask = torch.ones((2, 8), dtype=torch.long)
            mask[1, 5:] = 0
            x.update(input_ids=ids, attention_mask=mask)
        return x
    ids = torch.randint(0, cfg.vocab_size, (2, 8), generator=g)
    mask = torch.ones((2, 8), dtype=torch.long)
    if case["name"].startswith("qwen2"):   # left padding, as tokens.h5:/padded*
        mask[1, :3] = 0
        ids[1, :3] = 0
    x = {"input_ids": ids, "attention_mask": mask}
    return x


def outputs(model, x):
    """name -> tensor of every tensor output, nested model outputs flattened (text_model_output.pooler_output)."""
    kwargs = {"use_cache": False} if "input_ids" in x and not hasattr(model.config, "text_config") else {}
    with torch.no_grad():
        out = model(**x, **kwargs)
    flat = {}

    def walk(prefix, o):
        for k, v in o.items():
            if isinstance(v, torch.Tensor):
                flat[prefix + k] = v
            elif hasattr(v, "items"):
                walk(f"{prefix}{k}.", v)
    walk("", out)
    return flat


def compare_outputs(check, label, got, want):
    names = sorted(set(got) & set(want))
    check(bool(names), f"{label}: outputs to compare", f"got {sorted(got)}, reference {sorted(want)}")
    for k in names:
        a, b = got[k].double(), want[k].double()
        ok = a.shape == b.shape and bool(torch.isfinite(a).all())
        err = float((a - b).abs().max() / b.abs().max().clamp_min(1e-30)) if ok else float("inf")
        check(ok and err <= TOLERANCE, f"{label}: {k} {list(b.shape)} within {TOLERANCE:g} of the reference "
              f"({err:.1e})", f"shape {list(a.shape)}, relative error {err:.3g}")


def check_case(check, binary, case, tmp):
    name = case["name"]
    cls = model_class(case)
    base = base_dir(case)
    h5, proc = merge(binary, case, tmp, "h5", {"path": "", "dtype": "base"})
    check(proc.returncode == 0, f"{name}: catmerge run to HDF5", stderr_of(proc))
    out, proc = merge(binary, case, tmp, "st", {"path": "", "format": "safetensors", "shard_size": CASES[name],
                                                "dtype": "base"})
    check(proc.returncode == 0, f"{name}: catmerge run to safetensors", stderr_of(proc))
    if proc.returncode != 0 or not os.path.exists(h5):
        return

    # Loading: the architecture's own class (the causal LMs through AutoModelForCausalLM), and AutoModel.
    main_loader = AutoModelForCausalLM if is_causal(case) else cls
    main_name = "AutoModelForCausalLM" if is_causal(case) else cls.__name__
    try:
        model, info = load(main_loader, out, dtype=torch.float32)
    except Exception as e:   # noqa: BLE001 (a refusal is the finding)
        check(False, f"{name}: {main_name}.from_pretrained loads the output", f"{type(e).__name__}: {e}")
        return
    check(type(model) is cls, f"{name}: {main_name}.from_pretrained gives a {cls.__name__}", type(model).__name__)
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        check(not info.get(key), f"{name}: {main_name}: no {key}", f"{sorted(map(str, info.get(key)))[:4]}")
    try:
        bare, bare_info = load(AutoModel, out, dtype=torch.float32)
    except Exception as e:   # noqa: BLE001
        check(False, f"{name}: AutoModel.from_pretrained loads the output", f"{type(e).__name__}: {e}")
        return
    _, base_bare_info = load(AutoModel, base, dtype=torch.float32)
    for key in ("missing_keys", "mismatched_keys", "error_msgs"):
        check(not bare_info.get(key), f"{name}: AutoModel ({type(bare).__name__}): no {key}",
              f"{sorted(map(str, bare_info.get(key)))[:4]}")
    base_unexpected = sorted(base_bare_info.get("unexpected_keys") or [])
    check(sorted(bare_info.get("unexpected_keys") or []) == base_unexpected,
          f"{name}: AutoModel ({type(bare).__name__}): unexpected keys as for the base directory {base_unexpected}",
          f"{sorted(bare_info.get('unexpected_keys') or [])[:4]}")

    # Parameters.
    merged = tensors(h5)
    expected = tensors(os.path.join(FIXTURES, case["expected"]))
    check(set(merged) == set(expected), f"{name}: catmerge's HDF5 output has the reference's {len(expected)} tensors",
          f"{sorted(set(merged) ^ set(expected))[:3]}")
    got = {k: v.detach() for k, v in model.state_dict().items()}
    exact_ref = reference(check, case, merged, "catmerge's HDF5 output")
    want = exact_ref.state_dict()
    differ = sorted(k for k in want if k not in got or not same_bits(got[k], want[k]))
    check(set(got) == set(want) and not differ,
          f"{name}: {len(got)} parameters equal the base's with catmerge's HDF5 output merged in, bit for bit",
          f"names {sorted(set(got) ^ set(want))[:3]}; differ {differ[:3]}")
    ref = reference(check, case, expected, case["expected"])
    ref_sd = ref.state_dict()
    other = [k for k in ref_sd if k not in expected]
    differ = [k for k in other if k not in got or not same_bits(got[k], ref_sd[k])]
    if other:
        check(not differ, f"{name}: the {len(other)} parameters the merge does not cover ({other[0]} ..) equal "
              f"the reference's (the base's) bit for bit", f"{differ[:3]}")
    present = [k for k in expected if k in got]
    bitwise = [k for k in present if same_bits(got[k], ref_sd[k])]
    if case["config"]["method"]["name"] in EXACT_METHODS:
        check(len(bitwise) == len(expected), f"{name}: the {len(expected)} merged parameters equal the reference's "
              f"bit for bit", f"{len(expected) - len(bitwise)} differ, first "
              f"{[k for k in expected if k not in bitwise][:3]}")
    else:
        err = max_relative_error({k: Tensor(b"", got[k].double().numpy(), expected[k].kind) for k in present},
                                 {k: expected[k] for k in present})
        check(len(present) == len(expected) and err <= TOLERANCE,
              f"{name}: the {len(expected)} merged parameters within {TOLERANCE:g} (1 ulp for 16-bit) of the "
              f"reference's ({len(bitwise)} bit for bit, max error {err:.1e})", f"{err:.3g}")
    if base_config(case).get("tie_word_embeddings"):
        check(model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(),
              f"{name}: tied: lm_head.weight is model.embed_tokens.weight")

    # Forward.
    x = inputs(case, ref)
    compare_outputs(check, f"{name}: {cls.__name__}", outputs(model, x), outputs(ref, x))
    if type(bare) is not cls:
        inner = getattr(ref, ref.base_model_prefix)
        compare_outputs(check, f"{name}: AutoModel ({type(bare).__name__})", outputs(bare, x), outputs(inner, x))

    # The stored dtype.
    stored = TORCH_DTYPE[base_config(case)["dtype"]]
    native, _ = load(cls, out)
    dtypes = sorted({str(p.dtype) for p in native.parameters()})
    check(dtypes == [str(stored)], f"{name}: {cls.__name__}.from_pretrained without dtype gives {stored}",
          f"{dtypes}")
    header = set()
    for shard in sorted(f for f in os.listdir(out) if f.endswith(".safetensors")):
        with safe_open(os.path.join(out, shard), framework="pt") as f:
            header |= {f.get_slice(k).get_dtype() for k in f.keys()}
    check(header == {ST_DTYPE[stored]}, f"{name}: every shard tensor is stored as {ST_DTYPE[stored]}", f"{header}")


def main():
    binary = os.path.abspath(sys.argv[1])
    check = Report()
    with tempfile.TemporaryDirectory() as tmp:
        for case in named_cases(list(CASES)):
            check_case(check, binary, case, tmp)
    check.finish()


if __name__ == "__main__":
    main()
