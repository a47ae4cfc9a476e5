"""The eight merge methods, transcribed literally from docs/METHODS.md (clarity over speed).

Every method takes
  base:     dict name -> float32 array (theta_0; only the tensors the architecture merges, e.g. the
            vision tower of clip_vit, every llama tensor with a role)
  experts:  list of dicts name -> float32 array (theta_k, config order)
  params:   the `method:` map of the configuration (without `name`); absent keys take METHODS.md defaults
and returns dict name -> float32 merged tensor for exactly the tensors of the base.
Roles come from arch.classify(name) (the name spaces of clip_vit and llama are disjoint).
Arithmetic is float32 elementwise; Gram matrices and CAT / RegMean linear algebra are float64.
Work happens per merge unit (arch.Unit): a tensor, or one row block of a fused open_clip in_proj tensor.
"""
import math

import numpy as np

from arch import LINEAR, NORM, OTHER, SHIFT, model_units, unit_values
from model_order import in_model_order
from philox import dare_mask

f32 = np.float32


# ---------------------------------------------------------------- helpers

def _units(base):
    return model_units(base)


def _unit_data(base, experts, unit):
    """(theta_0 unit, [T_k unit]) as float32 flat vectors; T_k = theta_k - theta_0 in float32."""
    b = unit_values(base[unit.name], unit).astype(f32)
    return b, [(unit_values(e[unit.name], unit).astype(f32) - b).astype(f32) for e in experts]


def _assemble(base, merged_units):
    """merged_units: list of (unit, flat float32 values) -> dict name -> tensor of the base's shape."""
    out = {}
    for unit, vals in merged_units:
        if unit.name not in out:
            out[unit.name] = np.full(base[unit.name].size, np.nan, dtype=f32)
        out[unit.name][unit.offset:unit.offset + unit.numel] = np.asarray(vals, dtype=f32)
    for name, flat in out.items():
        assert not np.isnan(flat).any(), name
        out[name] = flat.reshape(base[name].shape)
    return out


def _alphas(params, K, default):
    if "alphas" in params:
        a = [float(x) for x in params["alphas"]]
        assert len(a) == K
        return a
    return [float(params.get("alpha", default))] * K


def _sum(vectors):
    acc = np.zeros_like(vectors[0], dtype=f32)
    for v in vectors:
        acc = (acc + v).astype(f32)
    return acc


def _position(d, expr):
    """A sorted position computed in float64 as written, clamped to [0, d-1]."""
    return min(max(int(expr), 0), d - 1)


def _minmax(v):
    lo, hi = v.min(), v.max()
    if hi == lo:
        return np.zeros_like(v, dtype=f32)
    return ((v - lo) / (hi - lo)).astype(f32)


def _scoped(base, experts, scope, per_scope):
    """Runs per_scope(b, Ts) -> merged flat values over every unit (scope 'tensor') or over the
    concatenation of all units of the model in the model order (scope 'model'), and reassembles the tensors."""
    units = _units(base)
    if scope == "tensor":
        return _assemble(base, [(u, per_scope(*_unit_data(base, experts, u))) for u in units])
    assert scope == "model", scope
    units = in_model_order(units)
    data = [_unit_data(base, experts, u) for u in units]
    b_all = np.concatenate([b for b, _ in data])
    T_all = [np.concatenate([Ts[k] for _, Ts in data]) for k in range(len(experts))]
    merged = per_scope(b_all, T_all)
    out, pos = [], 0
    for u in units:
        out.append((u, merged[pos:pos + u.numel]))
        pos += u.numel
    return _assemble(base, out)


# ---------------------------------------------------------------- weight_average / task_arithmetic

def weight_average(base, experts, params):
    """theta = theta_0 + (1/K) sum_k T_k."""
    K = len(experts)
    out = []
    for u in _units(base):
        b, Ts = _unit_data(base, experts, u)
        out.append((u, b + f32(1.0 / K) * _sum(Ts)))
    return _assemble(base, out)


def task_arithmetic(base, experts, params):
    """theta = theta_0 + sum_k alpha_k T_k; alpha default 0.3, or per-expert alphas."""
    alphas = _alphas(params, len(experts), 0.3)
    out = []
    for u in _units(base):
        b, Ts = _unit_data(base, experts, u)
        out.append((u, b + _sum([f32(a) * T for a, T in zip(alphas, Ts)])))
    return _assemble(base, out)


# ---------------------------------------------------------------- TIES

def ties_trim(T, density):
    """Step 1 for one task over its scope (T flat, in scope order): keep exactly k = floor(d*density) entries,
    those with the largest |T|, ties in |T| to the lower flat index. Returns (trimmed T, kept mask, whether
    some but not all entries equal to the k-th largest |T| are kept)."""
    d = T.size
    k = math.floor(d * density)
    a = np.abs(T.astype(np.float64))
    order = np.argsort(-a, kind="stable")   # |T| descending, equal ones by index
    keep = np.zeros(d, dtype=bool)
    keep[order[:k]] = True
    split = k > 0 and int(np.sum(a >= a[order[k - 1]])) > k
    return np.where(keep, T, f32(0)).astype(f32), keep, split


def ties_signs(That):
    """sign(sum_k That_k) per entry of a scope (float32 sum in config order): +1, -1 or 0."""
    return np.sign(_sum(That)).astype(np.int64)


def majority_sign(signs):
    """Step 2's sign for the entries whose sum is exactly 0: sign(sum of the scope's signs), +1 if that is 0."""
    total = int(sum(int(s.sum()) for s in signs))
    return 1 if total >= 0 else -1


def ties_elect_combine(b, That, alpha, majority, disjoint):
    """Steps 2-4: gamma = sign(sum That), `majority` where that sum is 0; the agreeing nonzero entries summed and,
    for disjoint 'mean', divided by their count; theta_0 + alpha tau."""
    gamma = ties_signs(That)
    gamma[gamma == 0] = majority
    total = np.zeros_like(b, dtype=f32)
    count = np.zeros_like(b, dtype=f32)
    for Th in That:
        agree = (np.sign(Th) == gamma) & (Th != 0)
        total = (total + np.where(agree, Th, f32(0))).astype(f32)
        count = count + agree.astype(f32)
    if disjoint == "mean":
        tau = (total / np.maximum(count, f32(1))).astype(f32)
    else:
        assert disjoint == "sum", disjoint
        tau = total
    return b + f32(alpha) * tau


def ties(base, experts, params, stats=None):
    scope = params.get("scope", "model")
    density = float(params.get("density", 0.2))
    alpha = float(params.get("alpha", 0.3))
    disjoint = params.get("disjoint", "mean")

    def per_scope(b, Ts):
        trimmed = [ties_trim(T, density) for T in Ts]
        That = [t for t, _, _ in trimmed]
        signs = ties_signs(That)
        if stats is not None:
            stats.setdefault("kept", []).append([int(keep.sum()) for _, keep, _ in trimmed])
            stats.setdefault("nonzero", []).append([int(np.count_nonzero(t)) for t in That])
            stats.setdefault("size", []).append(int(b.size))
            stats["split_ties"] = stats.get("split_ties", 0) + sum(split for _, _, split in trimmed)
            cancelled = (signs == 0) & np.any([t != 0 for t in That], axis=0)
            stats["zero_sums"] = stats.get("zero_sums", 0) + int(cancelled.sum())
        return ties_elect_combine(b, That, alpha, majority_sign([signs]), disjoint)

    return _scoped(base, experts, scope, per_scope)


# ---------------------------------------------------------------- DARE

def dare(base, experts, params, stats=None):
    """The TIES steps of combine 'ties' run over the whole model: its majority sign is the model's."""
    p = float(params.get("p", 0.5))
    seed = int(params.get("seed", 0))
    combine = params.get("combine", "task_arithmetic")
    alpha = float(params.get("alpha", 0.3))
    dropped = []
    kept, total = 0, 0
    for u in _units(base):
        b, Ts = _unit_data(base, experts, u)
        That = []
        for k, T in enumerate(Ts):
            m = np.array(dare_mask(u.name, k, seed, u.numel, p, offset=u.offset), dtype=bool)
            kept += int(m.sum())
            total += m.size
            That.append((np.where(m, T, f32(0)) / f32(1.0 - p)).astype(f32))
        dropped.append((u, b, That))
    out = []
    if combine == "task_arithmetic":
        out = [(u, b + _sum([f32(alpha) * Th for Th in That])) for u, b, That in dropped]
    elif combine == "ties":
        disjoint = params.get("disjoint", "mean")
        signs = [ties_signs(That) for _, _, That in dropped]
        majority = majority_sign(signs)
        out = [(u, ties_elect_combine(b, That, alpha, majority, disjoint)) for u, b, That in dropped]
        if stats is not None:
            stats["majority"] = majority
            stats["zero_sums"] = sum(int(((s == 0) & np.any([t != 0 for t in That], axis=0)).sum())
                                     for s, (_, _, That) in zip(signs, dropped))
    else:
        raise ValueError(combine)
    if stats is not None:
        stats["kept_fraction"] = kept / total
    return _assemble(base, out)


# ---------------------------------------------------------------- PCB

def pcb(base, experts, params):
    scope = params.get("scope", "model")
    ratio = float(params.get("ratio", 0.1))
    alpha = float(params.get("alpha", 1.0))
    K = len(experts)

    def per_scope(b, Ts):
        d = b.size
        sum_T = _sum(Ts)
        Tcs, scales = [], []
        for T in Ts:
            absT = np.abs(T)
            srt = np.sort(absT)
            lo = srt[_position(d, math.floor(d * 1e-4))]
            hi = srt[_position(d, math.floor(d * (1.0 - 1e-4)) - 1)]
            a = np.clip(absT, lo, hi).astype(f32)                     # 1. clamp
            Tcs.append((np.sign(T) * a).astype(f32))
            mm = _minmax(a)
            intra = np.exp(f32(K) * mm * mm).astype(f32)              # 2. intra balancing
            inter = np.tanh((T * sum_T).astype(f32)).astype(f32)      # 3. inter balancing
            s = (intra * inter).astype(f32)                           # 4. score
            q = np.sort(s)[_position(d, math.floor(d * (1.0 - ratio)))]
            scales.append(_minmax(np.maximum(s, q)))
        num = _sum([(Tc * sc).astype(f32) for Tc, sc in zip(Tcs, scales)])
        den = np.maximum(_sum(scales), f32(1e-12))
        tau = (num / den).astype(f32)                                 # 5.
        return b + f32(alpha) * tau

    return _scoped(base, experts, scope, per_scope)


# ---------------------------------------------------------------- RegMean

def regmean(base, experts, params, features):
    """features[k][site] = {'gram': S_k (float64), 'n': n_k} from expert k on its own exemplars."""
    reduction = float(params.get("reduction", 0.95))
    K = len(experts)
    out = []
    for u in _units(base):
        b, Ts = _unit_data(base, experts, u)
        if u.role != LINEAR:
            out.append((u, b + f32(1.0 / K) * _sum(Ts)))
            continue
        rows, cols = u.shape
        A = np.zeros((cols, cols))
        R = np.zeros((cols, rows))
        for k, e in enumerate(experts):
            st = features[k][u.site]
            G = st["gram"] / st["n"]
            G = G * reduction + np.diag(np.diag(G)) * (1.0 - reduction)  # off-diagonals * reduction
            W_k = unit_values(e[u.name], u).astype(np.float64).reshape(rows, cols)
            A += G
            R += G @ W_k.T
        out.append((u, _solve_spd(A, R).T.reshape(-1).astype(f32)))
    return _assemble(base, out)


def _solve_spd(A, R):
    """Solves A X = R by Cholesky; on failure adds 1e-6 * mean(diag A) to the diagonal."""
    try:
        L = np.linalg.cholesky(A)
    except np.linalg.LinAlgError:
        L = np.linalg.cholesky(A + 1e-6 * np.mean(np.diag(A)) * np.eye(A.shape[0]))
    return np.linalg.solve(L.T, np.linalg.solve(L, R))


# ---------------------------------------------------------------- Fisher

def fisher(base, experts, params, fishers):
    """theta = sum_k F_k theta_k / sum_k F_k with 1e-6 added to every F_k (fishers[k]: name -> array)."""
    out = []
    for u in _units(base):
        Fs = [(unit_values(F[u.name], u).astype(f32) + f32(1e-6)).astype(f32) for F in fishers]
        thetas = [unit_values(e[u.name], u).astype(f32) for e in experts]
        num = _sum([(Fk * th).astype(f32) for Fk, th in zip(Fs, thetas)])
        out.append((u, (num / _sum(Fs)).astype(f32)))
    return _assemble(base, out)


# ---------------------------------------------------------------- CAT

def _top_positive(g, c):
    """Indices of the c largest entries with g > 0, ties broken by the lower index."""
    order = sorted(range(len(g)), key=lambda z: (-g[z], z))
    return [z for z in order[:c] if g[z] > 0]


def _top_any(g, c):
    """Indices of the c largest entries whatever their sign, ties broken by the lower index."""
    return sorted(range(len(g)), key=lambda z: (-g[z], z))[:c]


def _at_least_ascending(g, c):
    """The released shift mask: the entries with g >= the value at 1-based position d - c of g sorted ascending
    (every entry if d - c < 1)."""
    d = len(g)
    if d - c < 1:
        return list(range(d))
    t = np.sort(g)[d - c - 1]
    return [z for z in range(d) if g[z] >= t]


def _rescaled(t, original, zero_below=0.0):
    """t scaled to the L2 (Frobenius) norm of `original` (both float32 flat), unless t is 0: exactly (a mask), or
    below zero_below times that norm (a projection that removed everything leaves rounding, not a direction)."""
    now = float(np.linalg.norm(t.astype(np.float64)))
    was = float(np.linalg.norm(original.astype(np.float64)))
    if not now > zero_below * was:
        return np.zeros_like(t)
    return (t * f32(was / now)).astype(f32)


def cat(base, experts, params, features, diag=None):
    """features[k][site]: statistics of task k's exemplars through task k's feature model.

    variant 'paper' (the formulas of METHODS.md "CAT Merging") or 'released' ("CAT as released")."""
    K = len(experts)
    alphas = _alphas(params, K, 0.3)
    c = int(params.get("c", 3))
    lam = float(params.get("lambda", 5.0))
    c_norm = int(params.get("c_norm", 3))
    lam_norm = float(params.get("lambda_norm", 5.0))
    c_shift = int(params.get("c_shift", 3))
    released = params.get("variant", "paper") == "released"
    assert params.get("variant", "paper") in ("paper", "released")
    if diag is None:
        diag = {}
    diag.setdefault("linear", [])
    diag.setdefault("norm", [])
    diag.setdefault("shift", [])
    out = []
    for u in _units(base):
        b, T = _unit_data(base, experts, u)       # T: the ORIGINAL task vectors
        That = [t.copy() for t in T]
        role = u.role
        if released and role == OTHER and len(u.shape) == 1:
            role = SHIFT                          # the released shift role takes every 1-D non-norm tensor
        if K > 1 and role == LINEAR and c > 0:
            rows, cols = u.shape
            Tm = [t.astype(np.float64).reshape(rows, cols) for t in T]
            bases = []
            for k in range(K):
                S_k = features[k][u.site]["gram"]
                G = np.zeros((rows, rows))
                for i in range(K):
                    if i != k:
                        S_i = features[i][u.site]["gram"]
                        G += Tm[i] @ (S_k - lam * S_i) @ Tm[i].T
                G = 0.5 * (G + G.T)
                w, V = np.linalg.eigh(G)                    # ascending
                if released:
                    top = [] if not w[-1] > 0 else list(range(rows - 1, max(rows - 1 - c, -1), -1))
                else:
                    top = [j for j in range(rows - 1, rows - 1 - c, -1) if j >= 0 and w[j] > 0]
                bases.append(V[:, top])
                diag["linear"].append(_eig_diag(u, k, w, c, released))
            for i in range(K):
                Ti = T[i].reshape(rows, cols)
                for k in range(K):
                    if k != i and bases[k].shape[1] > 0:
                        B = bases[k]
                        Ti = (Ti.astype(np.float64) - B @ (B.T @ Ti.astype(np.float64))).astype(f32)
                That[i] = Ti.reshape(-1)
                if released:
                    That[i] = _rescaled(That[i], T[i], zero_below=1e-5)
        elif K > 1 and role == NORM and c_norm > 0:
            masks = []
            for k in range(K):
                st_k = features[k][u.site]
                g = np.zeros(u.numel)
                scale = np.zeros(u.numel)
                for i in range(K):
                    if i != k:
                        st_i = features[i][u.site]
                        t2 = T[i].astype(np.float64) ** 2
                        if released:   # means over the rows of (xhat T_i)^2
                            g += t2 * st_k["sqsum"] / st_k["n"] - lam_norm * t2 * st_i["sqsum"] / st_i["n"]
                            scale += t2 * st_k["sqsum"] / st_k["n"] + abs(lam_norm) * t2 * st_i["sqsum"] / st_i["n"]
                        else:
                            g += t2 * (st_k["sqsum"] - lam_norm * st_i["sqsum"])
                            scale += t2 * (st_k["sqsum"] + abs(lam_norm) * st_i["sqsum"])
                masks.append(_top_any(g, c_norm) if released else _top_positive(g, c_norm))
                diag["norm"].append(_mask_diag(u, k, g, c_norm, scale, released))
            for k in range(K):
                for i in range(K):
                    if i != k:
                        That[i][masks[k]] = 0
            if released:
                That = [_rescaled(t, t0) for t, t0 in zip(That, T)]
        elif K > 1 and role == SHIFT:
            masks = []
            for k in range(K):
                if released:
                    g = (K - 1) * T[k].astype(np.float64) ** 2   # task k's own entries, K - 1 times
                    masks.append(_at_least_ascending(g, c_shift))
                    diag["shift"].append(_threshold_diag(u, k, g, c_shift))
                    continue
                g = np.zeros(u.numel)
                for i in range(K):
                    if i != k:
                        g += T[i].astype(np.float64) ** 2
                masks.append(_top_positive(g, c_shift))
                diag["shift"].append(_mask_diag(u, k, g, c_shift, g))
            for k in range(K):
                for i in range(K):
                    if i != k:
                        That[i][masks[k]] = 0
        else:
            assert role in (LINEAR, NORM, SHIFT, OTHER)
        if "alphas" in params:
            merged = b + _sum([f32(a) * t for a, t in zip(alphas, That)])
        else:
            merged = b + f32(alphas[0]) * _sum(That)
        out.append((u, merged))
    return _assemble(base, out)


def _eig_diag(u, k, w, c, released=False):
    """Conditioning of the top-c selection of G_k: eigenvalues descending, relative gaps. For the released
    variant also the largest eigenvalue's distance from 0 (it decides between c vectors and none) and the gap
    between the c-th and (c+1)-th eigenvalues whatever their sign, relative to the larger of the two."""
    e = w[::-1]
    emax = float(np.max(np.abs(e)))
    positive = int(np.sum(e > 1e-6 * emax))
    e_c = float(e[c - 1]) if c - 1 < len(e) else float("nan")
    e_next = float(e[c]) if c < len(e) else float("-inf")
    d = {"unit": f"{u.name}[{u.part}]", "k": k, "positive": positive, "emax": emax,
         "ec_rel": e_c / emax, "gap_rel": (e_c - e_next) / abs(e_c) if e_c != 0 else 0.0,
         "gap_rel_max": (e_c - max(e_next, 0.0)) / emax, "released": released}
    if released:
        d["top_rel"] = float(e[0]) / emax
        d["gap_any"] = (e_c - e_next) / max(abs(e_c), abs(e_next)) if c < len(e) else float("inf")
    return d


def _mask_diag(u, k, g, c, scale, released=False):
    """How far the top-c selection is from changing, relative to the size of the terms the scores are made of
    (scale_z >= |g_z|, so a float32 perturbation of the inputs moves g_z by ~1e-7 scale_z). Paper (top c with
    g > 0): the smaller of the last chosen score's distance from 0 and its distance from the first score left
    out (or that one's distance from 0 when fewer than c scores are positive). Released (top c whatever the
    sign): the distance between the last chosen score and the first one left out.
    An entry with scale_z = 0 (every T_i[z] = 0, e.g. bf16 task vectors that round to nothing) has g_z = 0
    exactly in any implementation; it is left out of the margins (a tie of such entries is broken by index,
    exactly, everywhere)."""
    order = sorted(range(len(g)), key=lambda z: (-g[z], z))
    if released:
        chosen = order[:c]
        margin = float("inf")
        if chosen and len(order) > c:
            a, n = chosen[-1], order[c]
            if max(scale[a], scale[n]) > 0:
                margin = abs(g[a] - g[n]) / max(scale[a], scale[n])
        return {"unit": f"{u.name}[{u.part}]", "k": k, "chosen": len(chosen), "margin_rel": float(margin)}
    chosen = [z for z in order[:c] if g[z] > 0]
    margins = []
    if chosen:
        z = chosen[-1]
        margins.append(g[z] / scale[z])
    rest = [z for z in order[len(chosen):] if scale[z] > 0]
    if rest:
        n = rest[0]
        if len(chosen) == c:
            margins.append((g[chosen[-1]] - g[n]) / max(scale[chosen[-1]], scale[n]))
        else:
            margins.append(-g[n] / scale[n])
    if not margins:
        margins.append(float("inf"))
    return {"unit": f"{u.name}[{u.part}]", "k": k, "chosen": len(chosen), "margin_rel": float(min(margins))}


def _threshold_diag(u, k, g, c):
    """The released shift mask: its scores (K - 1) T_k^2 are exact in float64 from the float32 T_k in every
    implementation, so the selection cannot move; records how many entries it takes (c + 1 without ties)."""
    return {"unit": f"{u.name}[{u.part}]", "k": k, "chosen": len(_at_least_ascending(g, c)),
            "margin_rel": float("inf")}


METHODS = ("weight_average", "task_arithmetic", "ties", "dare", "pcb", "regmean", "fisher", "cat")
