#!/usr/bin/env python3
"""A straightforward PyTorch CAT Merging (docs/METHODS.md, "CAT Merging") of CLIP-ViT experts, the baseline
that bench/cat_vs_torch.sh times catmerge against. It reads the same catmerge configuration (model.base,
experts[].path and .exemplars, method hyperparameters, features.exemplars) and the same HF directories.

  - features: each expert runs its own first `--exemplars` images through transformers' CLIPVisionModel;
    forward hooks record the input of every nn.Linear (q/k/v share one input) and the normalised input
    xhat of every LayerNorm; S_k = X_k^T X_k in float64 (per site, when a tensor needs it);
  - linear tensors: G_k = sum_{i != k} T_i (S_k - lambda S_i) T_i^T formed densely in float64,
    torch.linalg.eigh, B_k = eigenvectors of the c largest eigenvalues that are > 0, then
    T_i <- (I - B_k B_k^T) T_i for k != i in ascending k (float64, rounded to float32 after each);
  - norm_scale and shift tensors: CAT's entry masks; other tensors untouched;
  - merged = base + alpha * sum_k T_k (float32), written to an HDF5 file in the base's dtype, as catmerge
    writes it (HF names; bf16 as uint16 bits with the attribute dtype="bfloat16").
Prints the wall time of each phase and the total. Runs in bench/setup-venv.sh's environment (CPU torch):

  build/bench-venv/bin/python bench/torch_cat.py WORK/merge.yaml --out WORK/torch.h5 [--threads N]
"""
import argparse
import json
import os
import re
import time

import h5py
import torch
import yaml
from safetensors import safe_open
from transformers import CLIPVisionConfig, CLIPVisionModel


class Checkpoint:
    """Lazy tensors of an HF directory (model.safetensors or a shard index) or of one .safetensors file."""

    def __init__(self, path):
        if os.path.isdir(path):
            index = os.path.join(path, "model.safetensors.index.json")
            if os.path.exists(index):
                with open(index) as f:
                    shards = sorted(set(json.load(f)["weight_map"].values()))
                files = [os.path.join(path, s) for s in shards]
            else:
                files = [os.path.join(path, "model.safetensors")]
            self.config_path = os.path.join(path, "config.json")
        else:
            files, self.config_path = [path], os.path.join(os.path.dirname(path), "config.json")
        self.where = {}
        for file in files:
            handle = safe_open(file, framework="pt")
            for name in handle.keys():
                self.where[name] = handle

    def names(self):
        return list(self.where)

    def get(self, name):
        return self.where[name].get_tensor(name).to(torch.float32)

    def dtype(self, name):
        return self.where[name].get_slice(name).get_dtype()


def unprefixed(name):
    """transformers 5's CLIPVisionModel has no `vision_model.` level: module and state names lack it."""
    return name[len("vision_model."):] if name.startswith("vision_model.") else name


def role(name):
    """clip_vit roles as docs/DESIGN.md assigns them, and the feature site of linear and norm tensors
    (the module whose input is recorded, as record_features names it)."""
    module, _, kind = unprefixed(name).rpartition(".")
    is_norm = module.endswith(("layer_norm1", "layer_norm2", "pre_layrnorm", "post_layernorm"))
    is_linear = module.endswith(("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"))
    if kind == "weight" and is_linear:
        return "linear", module.replace("k_proj", "q_proj").replace("v_proj", "q_proj")
    if kind == "weight" and is_norm:
        return "norm", module
    if kind == "bias" and (is_linear or is_norm):
        return "shift", None
    return "other", None


def record_features(model, pixels):
    """module name -> float32 rows: inputs of the linear maps (q_proj stands for q/k/v), xhat of LayerNorms."""
    rows, hooks = {}, []

    def linear_hook(name):
        def hook(module, inputs, output):
            x = inputs[0].detach()
            rows[unprefixed(name)] = x.reshape(-1, x.shape[-1]).clone()
        return hook

    def norm_hook(name):
        def hook(module, inputs, output):
            x = inputs[0].detach()
            x = x.reshape(-1, x.shape[-1])
            mean = x.mean(dim=-1, keepdim=True)
            var = x.var(dim=-1, unbiased=False, keepdim=True)
            rows[unprefixed(name)] = (x - mean) / torch.sqrt(var + module.eps)
        return hook

    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and not name.endswith(("k_proj", "v_proj")):
            hooks.append(module.register_forward_hook(linear_hook(name)))
        elif isinstance(module, torch.nn.LayerNorm):
            hooks.append(module.register_forward_hook(norm_hook(name)))
    with torch.no_grad():
        model(pixel_values=pixels)
    for h in hooks:
        h.remove()
    return rows


def model_order(name):
    """Sort key: embeddings, blocks in order, the post-LayerNorm; q, k and v weights (one site) side by side."""
    m = re.search(r"\.layers\.(\d+)\.", name)
    stage = int(m.group(1)) + 1 if m else (10 ** 6 if "post_layernorm" in name else 0)
    return stage, role(name)[1] or "", name


def top_positive(g, c):
    """Indices of the c largest entries of g with g > 0; ties broken by the lower index."""
    values, order = torch.sort(g, descending=True, stable=True)
    return order[:c][values[:c] > 0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("--out", required=True, help="merged tensors, HDF5")
    ap.add_argument("--exemplars", type=int, default=None, help="images per task (default: the config's, else 2)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default, all cores)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    start = time.perf_counter()
    phases = {}

    def phase(name, since):
        now = time.perf_counter()
        phases[name] = phases.get(name, 0.0) + now - since
        return now

    with open(a.config) as f:
        cfg = yaml.safe_load(f)
    here = os.path.dirname(os.path.abspath(a.config))
    path = lambda p: p if os.path.isabs(p) else os.path.join(here, p)
    method = dict(cfg.get("method", {}))
    if method.pop("name", "cat") != "cat":
        raise SystemExit("torch_cat.py: the configuration's method is not cat")
    alpha = torch.tensor(float(method.get("alpha", 0.3)), dtype=torch.float32)
    c, lam = int(method.get("c", 3)), float(method.get("lambda", 5.0))
    c_norm, lam_norm, c_shift = int(method.get("c_norm", 3)), float(method.get("lambda_norm", 5.0)), int(method.get("c_shift", 3))
    n_images = a.exemplars or int(cfg.get("features", {}).get("exemplars", 2))
    if "alphas" in method or cfg.get("features", {}).get("model", "expert") != "expert":
        raise SystemExit("torch_cat.py: only one alpha and features.model: expert are implemented")

    t = time.perf_counter()
    base = Checkpoint(path(cfg["model"]["base"]))
    experts = [Checkpoint(path(e["path"])) for e in cfg["experts"]]
    K = len(experts)
    with open(base.config_path) as f:
        vision = CLIPVisionConfig(**{k: v for k, v in json.load(f).items() if k not in ("architectures", "torch_dtype")})
    model = CLIPVisionModel(vision).eval()
    names = [n for n in base.names() if n.startswith("vision_model.") and not n.endswith("position_ids")]
    names.sort(key=model_order)
    t = phase("open", t)

    features = []  # features[k][module name] = float32 rows [n_k, width]
    for k, e in enumerate(cfg["experts"]):
        state = {unprefixed(n): experts[k].get(n) for n in experts[k].names() if not n.endswith("position_ids")}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or [m for m in missing if not m.endswith("position_ids")]:
            raise SystemExit(f"torch_cat.py: {e['path']}: missing {missing[:3]}, unexpected {unexpected[:3]}")
        del state
        file, group = e["exemplars"].rsplit(":", 1)
        with h5py.File(path(file), "r") as f:
            pixels = torch.from_numpy(f[group.strip("/") + "/pixel_values"][:n_images])
        features.append(record_features(model, pixels))
    del model
    t = phase("features", t)

    gram_site, grams = None, None
    counts = {"linear": 0, "norm": 0, "shift": 0, "other": 0}
    with h5py.File(a.out + ".tmp", "w") as out:
        for name in names:
            kind, site = role(name)
            counts[kind] += 1
            b = base.get(name)
            T = [e.get(name) - b for e in experts]  # the original task vectors, float32
            That = [x.clone() for x in T]
            t = phase("read", t)
            if K > 1 and kind == "linear":
                if site != gram_site:  # q, k and v share their S_k
                    grams = [features[k][site].double().T @ features[k][site].double() for k in range(K)]
                    gram_site = site
                    t = phase("gram S_k", t)
                T64 = [x.double() for x in T]
                bases = []
                for k in range(K):
                    G = torch.zeros(b.shape[0], b.shape[0], dtype=torch.float64)
                    for i in range(K):
                        if i != k:
                            G += T64[i] @ (grams[k] - lam * grams[i]) @ T64[i].T
                    G = 0.5 * (G + G.T)
                    t = phase("conflict G_k", t)
                    w, V = torch.linalg.eigh(G)  # ascending
                    top = [j for j in range(len(w) - 1, max(len(w) - 1 - c, -1), -1) if w[j] > 0]
                    bases.append(V[:, top])
                    t = phase("bases (eigh)", t)
                for i in range(K):
                    for k in range(K):
                        if k != i and bases[k].shape[1] > 0:
                            x = That[i].double()
                            That[i] = (x - bases[k] @ (bases[k].T @ x)).to(torch.float32)
                t = phase("projection", t)
            elif K > 1 and kind in ("norm", "shift"):
                sq = [x.double().reshape(-1) ** 2 for x in T]
                if kind == "norm":  # sum over rows of xhat^2, per task
                    q = [(features[k][site].double() ** 2).sum(0) for k in range(K)]
                masks = []
                for k in range(K):
                    g = torch.zeros(b.numel(), dtype=torch.float64)
                    for i in range(K):
                        if i != k:
                            g += sq[i] * (q[k] - lam_norm * q[i]) if kind == "norm" else sq[i]
                    masks.append(top_positive(g, c_norm if kind == "norm" else c_shift))
                for k in range(K):
                    for i in range(K):
                        if i != k:
                            That[i].view(-1)[masks[k]] = 0
                t = phase("masks", t)
            total = torch.zeros_like(b)
            for x in That:
                total += x
            merged = b + alpha * total
            if base.dtype(name) == "BF16":  # as catmerge writes it: uint16 bits, attribute dtype="bfloat16"
                out[name] = merged.to(torch.bfloat16).view(torch.int16).numpy().view("uint16")
                out[name].attrs["dtype"] = "bfloat16"
            elif base.dtype(name) == "F16":
                out[name] = merged.to(torch.float16).numpy()
            else:
                out[name] = merged.numpy()
            t = phase("merge+write", t)
    os.replace(a.out + ".tmp", a.out)
    wall = time.perf_counter() - start
    print(f"torch_cat: wrote {a.out} ({K} experts, {n_images} exemplars per task, {counts['linear']} linear, "
          f"{counts['norm']} norm, {counts['shift']} shift, {counts['other']} other tensors, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads) in {wall:.2f} s")
    print("torch_cat: phases " + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()))


if __name__ == "__main__":
    main()
