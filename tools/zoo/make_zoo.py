#!/usr/bin/env python3
"""Builds the expert zoo under data/zoo/ (see tools/zoo/README.md and data/zoo/README.md).

A small vision transformer with HuggingFace CLIPVisionModel names and config (catmerge reads it as clip_vit)
is pre-trained on a broad objective (identity of ~1000 Unicode glyphs rendered from the installed DejaVu
fonts, plus rotation prediction on photo patches and handwritten digits), then fine-tuned once per task
(linear probe first, then backbone + head, gently) for 8 tasks built from offline images: scikit-learn's
handwritten digits and sample photographs, and glyphs rendered from the DejaVu fonts.

Everything is seeded; with the same versions (python, torch, transformers, Pillow/FreeType, scikit-learn,
fonts) and the same thread count the files come out bit for bit the same. Run from the repository root:

    python3 tools/zoo/make_zoo.py            # writes data/zoo/ (about 20 minutes on 2 cores)
    python3 tools/zoo/make_zoo.py --quick    # a few steps of everything, into /tmp/zoo-quick (a smoke test)
"""
import argparse
import glob
import hashlib
import json
import math
import os
import platform
import shutil
import sys
import time
import unicodedata

import h5py
import numpy as np
import torch
import torch.nn.functional as F

# ----------------------------------------------------------------------------------------------------------
# Settings (every number that shapes the zoo)
# ----------------------------------------------------------------------------------------------------------
THREADS = 2
SEED = 20251105
IMAGE = 24            # images are 1 x 24 x 24
CANVAS = 48           # glyphs are rendered at RENDER_PX on a 48 x 48 canvas, then resampled to 24 x 24
RENDER_PX = 28
MODEL = dict(hidden_size=192, num_hidden_layers=3, num_attention_heads=6, intermediate_size=384,
             image_size=IMAGE, patch_size=4, num_channels=1, hidden_act="quick_gelu", layer_norm_eps=1e-5)
PRETRAIN = dict(steps=3000, batch=128, rot_share=0.25, lr=1e-3, warmup=200, weight_decay=0.05)
PROBE = dict(samples=8192, steps=300, lr=1e-2, weight_decay=1e-4)
FINETUNE = dict(steps=500, batch=64, lr=3e-5, warmup=50, weight_decay=0.0)
N_VAL, N_TEST, N_EXEMPLARS = 256, 512, 16
TASKS = ["digits", "housenum", "letters", "greek", "fonts", "arrows", "chess", "scenes"]

FONT_DIR = "/usr/share/fonts/truetype/dejavu"
# Faces used for rendering (the Math TeX Gyre face is left out: it is a different design).
FACES = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
         "DejaVuSans-ExtraLight.ttf", "DejaVuSansCondensed.ttf", "DejaVuSansCondensed-Bold.ttf",
         "DejaVuSansCondensed-Oblique.ttf", "DejaVuSansCondensed-BoldOblique.ttf", "DejaVuSansMono.ttf",
         "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf", "DejaVuSansMono-BoldOblique.ttf",
         "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf",
         "DejaVuSerifCondensed.ttf", "DejaVuSerifCondensed-Bold.ttf", "DejaVuSerifCondensed-Italic.ttf",
         "DejaVuSerifCondensed-BoldItalic.ttf"]
# The fonts task: which of these six faces a lowercase Latin letter is set in.
FONT_CLASSES = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSerif.ttf",
                "DejaVuSerif-Bold.ttf", "DejaVuSansMono.ttf"]
LETTERS = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
DIGITS = [str(d) for d in range(10)]
GREEK = [chr(c) for c in range(0x3B1, 0x3CA) if c != 0x3C2]        # alpha..omega without final sigma: 24
CHESS = [chr(c) for c in range(0x2654, 0x2660)]                     # white and black king..pawn: 12
# Right-pointing arrows; the arrows task rotates them to one of 8 directions.
ARROWS = ["\u2192", "\u21d2", "\u27a1", "\u21e8", "\u2794", "\u279c", "\u279d", "\u279e", "\u27f6", "\u21a6",
          "\u2b62", "\u21fe"]
# Pre-training glyph classes come from these ranges, minus anything that looks like a task glyph.
PRETRAIN_RANGES = [(0x61, 0x7A), (0x391, 0x3A9), (0x400, 0x45F), (0x531, 0x556), (0x561, 0x586), (0x5D0, 0x5EA),
                   (0x10A0, 0x10C5), (0x10D0, 0x10FA), (0x2100, 0x214F), (0x2200, 0x22FF), (0x2300, 0x23FF),
                   (0x25A0, 0x25FF), (0x2600, 0x2653), (0x2660, 0x26FF), (0x2700, 0x2793), (0x250, 0x2AF)]
SCENE_DOWNSCALE = 2   # photos are used at half resolution (213 x 320)


def log(*a):
    print(f"[{time.strftime('%H:%M:%S')}]", *a, flush=True)


# ----------------------------------------------------------------------------------------------------------
# Glyph rendering (Pillow + FreeType); only the build needs the fonts
# ----------------------------------------------------------------------------------------------------------
class Renderer:
    def __init__(self):
        from PIL import Image, ImageDraw, ImageFont
        self.Image, self.ImageDraw = Image, ImageDraw
        self.fonts = {f: ImageFont.truetype(os.path.join(FONT_DIR, f), RENDER_PX) for f in FACES}
        self.missing = {f: self._raw("\ue000", f) for f in FACES}   # private use: every face draws .notdef

    def _raw(self, ch, face):
        im = self.Image.new("L", (CANVAS, CANVAS), 0)
        self.ImageDraw.Draw(im).text((CANVAS // 2, CANVAS // 2), ch, fill=255, font=self.fonts[face], anchor="mm")
        return np.asarray(im, dtype=np.uint8).copy()

    def render(self, ch, face):
        """The glyph as uint8 ink [48, 48], or None when the face lacks it or draws nothing."""
        a = self._raw(ch, face)
        if a.sum() < 255 * 6 or np.array_equal(a, self.missing[face]):
            return None
        return a


def glyph_bank(r, chars, faces):
    """Renders chars x faces; returns (ink uint8 [n, 48, 48], class index [n], face index [n])."""
    ims, cls, fac = [], [], []
    for ci, ch in enumerate(chars):
        for fi, face in enumerate(faces):
            a = r.render(ch, face)
            if a is not None:
                ims.append(a)
                cls.append(ci)
                fac.append(fi)
    return np.stack(ims), np.array(cls), np.array(fac)


def signature(a):
    """A coarse, normalised 12 x 12 view of a glyph, for look-alike detection."""
    t = torch.from_numpy(a).float()[None, None]
    ys, xs = np.nonzero(a)
    t = t[..., ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    v = F.interpolate(t, size=(12, 12), mode="area").flatten()
    v = v - v.mean()
    return v / (v.norm() + 1e-6)


def pretrain_chars(r):
    """Glyph classes for pre-training: the ranges above, drawn by DejaVu Sans and at least 8 faces, not a
    mark, space, control or digit, and not a look-alike (cosine > 0.9 on a 12 x 12 view) of any task glyph
    or of a class already chosen."""
    task_sigs = [signature(r.render(c, "DejaVuSans.ttf")) for c in LETTERS + DIGITS + GREEK + CHESS]
    arrow = r.render("\u2192", "DejaVuSans.ttf")
    for k in range(8):   # the arrows task's eight directions
        task_sigs.append(signature(np.rot90(arrow, k // 2).copy()) if k % 2 == 0 else signature(arrow))
    kept, sigs = [], list(task_sigs)
    for lo, hi in PRETRAIN_RANGES:
        for cp in range(lo, hi + 1):
            ch = chr(cp)
            if unicodedata.category(ch)[0] in "MZCN":
                continue
            a = r.render(ch, "DejaVuSans.ttf")
            if a is None or sum(r.render(ch, f) is not None for f in FACES) < 8:
                continue
            s = signature(a)
            if max(float(s @ t) for t in sigs) > 0.9:
                continue
            kept.append(ch)
            sigs.append(s)
    return kept


# ----------------------------------------------------------------------------------------------------------
# Images: ink masks resampled by a random affine map, composited on a random background, noise, uint8
# ----------------------------------------------------------------------------------------------------------
def to_pixels(u8):
    """uint8 images -> the model's pixel values; catmerge eval computes exactly this (float32)."""
    return u8.float() / 127.5 - 1.0


def smooth(ink_u8):
    """uint8 [n, 48, 48] -> float [n, 1, 48, 48] in [0, 1], lightly blurred (anti-aliasing for resampling)."""
    t = torch.from_numpy(ink_u8).float()[:, None] / 255.0
    return F.avg_pool2d(F.pad(t, (1, 1, 1, 1), mode="replicate"), 3, stride=1)


def uniform(g, n, lo, hi):
    return lo + (hi - lo) * torch.rand(n, generator=g)


def warp(src, g, angle, height, shift, src_px=RENDER_PX * 0.5):
    """Resamples src [n, 1, H, W] to [n, 1, 24, 24]: rotation `angle` (radians), the source's nominal glyph
    height src_px (in output pixels at zoom 1) scaled to `height` output pixels, and a random shift."""
    n = src.shape[0]
    z = height / src_px
    c, s = torch.cos(angle) / z, torch.sin(angle) / z
    tx, ty = uniform(g, n, -shift, shift), uniform(g, n, -shift, shift)
    theta = torch.stack([torch.stack([c, -s, tx], 1), torch.stack([s, c, ty], 1)], 1)
    grid = F.affine_grid(theta, (n, 1, IMAGE, IMAGE), align_corners=False)
    return F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def composite(mask, g, noise=0.08, min_contrast=0.35):
    """Ink mask [n, 1, 24, 24] in [0, 1] -> uint8 image: random background and ink levels (either polarity,
    contrast at least min_contrast), Gaussian noise, rounding."""
    n = mask.shape[0]
    bg = uniform(g, n, 0.0, 1.0)
    contrast = uniform(g, n, min_contrast, 1.0)
    up = torch.where(bg + contrast <= 1.0, torch.ones(n), -torch.ones(n))
    flip = (torch.rand(n, generator=g) < 0.5) & (bg - contrast >= 0.0)
    sign = torch.where(flip, -torch.ones(n), up)
    fg = (bg + sign * contrast).clamp(0, 1)
    img = bg[:, None, None, None] + (fg - bg)[:, None, None, None] * mask
    sigma = uniform(g, n, 0.0, noise)[:, None, None, None]
    img = img + sigma * torch.randn(img.shape, generator=g)
    return (img.clamp(0, 1) * 255.0).round().to(torch.uint8)


def deg(x):
    return x * math.pi / 180.0


class Sources:
    """Everything images are made from, rendered or loaded once."""

    def __init__(self, r, quick):
        from sklearn.datasets import load_digits, load_sample_images
        t0 = time.time()
        self.pre_chars = pretrain_chars(r)
        if quick:
            self.pre_chars = self.pre_chars[:60]
        ink, self.pre_cls, _ = glyph_bank(r, self.pre_chars, FACES)
        self.pre_ink = smooth(ink)
        self.pre_by_class = [np.nonzero(self.pre_cls == c)[0] for c in range(len(self.pre_chars))]
        self.banks = {}
        for name, chars in [("letters", LETTERS), ("housenum", DIGITS), ("greek", GREEK), ("chess", CHESS),
                            ("arrows", ARROWS)]:
            ink, cls, fac = glyph_bank(r, chars, FACES)
            self.banks[name] = (smooth(ink), torch.from_numpy(cls), [np.nonzero(cls == c)[0] for c in range(len(chars))])
        lower = [chr(c) for c in range(ord("a"), ord("z") + 1)]
        ink, cls, fac = glyph_bank(r, lower, FONT_CLASSES)
        self.banks["fonts"] = (smooth(ink), torch.from_numpy(fac), [np.nonzero(fac == c)[0] for c in range(len(FONT_CLASSES))])
        # Handwritten digits: fixed split by a seeded permutation (val, test, then the rest for training).
        d = load_digits()
        perm = np.random.RandomState(SEED).permutation(len(d.target))
        canvas = torch.zeros(len(perm), 1, CANVAS, CANVAS)
        up = F.interpolate(torch.from_numpy(d.images).float()[:, None] / 16.0, size=(28, 28), mode="bilinear",
                           align_corners=False)
        canvas[:, :, 10:38, 10:38] = up.clamp(0, 1)
        self.hand = canvas
        self.hand_label = torch.from_numpy(d.target.astype(np.int64))
        self.hand_split = {"val": perm[:N_VAL], "test": perm[N_VAL:N_VAL + N_TEST], "train": perm[N_VAL + N_TEST:]}
        # Photos: grey, half resolution; classes = photo x quadrant; columns in 40-pixel stripes, stripe j
        # of each quadrant (j = 0..3): 0, 2 train, 1 val, 3 test.
        imgs = load_sample_images().images
        self.photos = []
        for im in imgs:
            grey = torch.from_numpy(im.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255.0
            grey = F.avg_pool2d(grey[None, None], SCENE_DOWNSCALE)[0, 0]
            self.photos.append(grey)
        self.timing = time.time() - t0

    # -- task samplers: (uint8 [n, 1, 24, 24], labels int64 [n]) ---------------------------------------------
    def glyph_task(self, name, n, g, rot=15.0, hmin=11.0, hmax=20.0):
        ink, labels, by_class = self.banks[name]
        cls = torch.randint(len(by_class), (n,), generator=g)
        idx = torch.tensor([by_class[c][int(torch.randint(len(by_class[c]), (1,), generator=g))] for c in cls.tolist()])
        mask = warp(ink[idx], g, deg(uniform(g, n, -rot, rot)), uniform(g, n, hmin, hmax), 0.12)
        return composite(mask, g), labels[idx].long()

    def sample(self, task, n, g, split):
        if task == "letters":
            return self.glyph_task("letters", n, g, rot=20.0)
        if task == "greek":
            return self.glyph_task("greek", n, g, rot=20.0)
        if task == "chess":
            return self.glyph_task("chess", n, g, rot=15.0)
        if task == "fonts":
            return self.glyph_task("fonts", n, g, rot=0.0, hmin=15.0, hmax=21.0)
        if task == "arrows":
            ink, _, by_class = self.banks["arrows"]
            idx = torch.randint(ink.shape[0], (n,), generator=g)
            direction = torch.randint(8, (n,), generator=g)
            angle = deg(45.0 * direction.float() + uniform(g, n, -12.0, 12.0))
            mask = warp(ink[idx], g, angle, uniform(g, n, 12.0, 20.0), 0.12)
            return composite(mask, g), direction
        if task == "housenum":
            return self.housenum(n, g)
        if task == "digits":
            return self.digits(n, g, split)
        if task == "scenes":
            return self.scenes(n, g, split)
        raise ValueError(task)

    def housenum(self, n, g):
        """A printed digit between two neighbours of the same face (like a house number): label = middle."""
        ink, labels, by_class = self.banks["housenum"]
        faces_of = {}
        for i in range(ink.shape[0]):
            faces_of.setdefault(int(labels[i]), []).append(i)
        out = torch.zeros(n, 1, CANVAS, CANVAS)
        digits = torch.randint(10, (n, 3), generator=g)
        gap = torch.randint(17, 23, (n,), generator=g)
        y = torch.empty(n, dtype=torch.long)
        for i in range(n):
            mid = faces_of[int(digits[i, 1])]
            j = mid[int(torch.randint(len(mid), (1,), generator=g))]
            face_pos = j - mid[0]   # same face index within each digit's list (every face draws digits)
            canvas = ink[j].clone()
            for side, k in ((-1, 0), (1, 2)):
                lst = faces_of[int(digits[i, k])]
                nb = ink[lst[min(face_pos, len(lst) - 1)]]
                s = int(gap[i])
                shifted = torch.zeros_like(nb)
                if side < 0:
                    shifted[..., :CANVAS - s] = nb[..., s:]
                else:
                    shifted[..., s:] = nb[..., :CANVAS - s]
                canvas = torch.maximum(canvas, shifted)
            out[i] = canvas
            y[i] = digits[i, 1]
        mask = warp(out, g, deg(uniform(g, n, -6.0, 6.0)), uniform(g, n, 13.0, 20.0), 0.06)
        return composite(mask, g), y

    def digits(self, n, g, split):
        pool = self.hand_split[split]
        if split != "train":
            assert n == len(pool)
            idx = torch.from_numpy(pool)
        else:
            idx = torch.from_numpy(pool)[torch.randint(len(pool), (n,), generator=g)]
        mask = warp(self.hand[idx], g, deg(uniform(g, n, -15.0, 15.0)), uniform(g, n, 13.0, 20.0), 0.1)
        return composite(mask, g), self.hand_label[idx]

    def scenes(self, n, g, split, rotation_labels=False):
        """Patches of the two photos; label = photo * 4 + quadrant (or, for pre-training, a rotation)."""
        stripes = {"train": (0, 2), "val": (1,), "test": (3,)}[split]
        out = torch.empty(n, 1, IMAGE, IMAGE)
        labels = torch.empty(n, dtype=torch.long)
        cls = torch.randint(8, (n,), generator=g)
        size = torch.randint(20, 37, (n,), generator=g)
        for i in range(n):
            c = int(cls[i])
            photo = self.photos[c // 4]
            H, W = photo.shape
            qy, qx = (c % 4) // 2, (c % 4) % 2
            y0, y1 = qy * (H // 2), (qy + 1) * (H // 2)
            stripe = stripes[int(torch.randint(len(stripes), (1,), generator=g))]
            x0 = qx * (W // 2) + stripe * 40
            s = int(size[i])
            yy = y0 + int(torch.randint(y1 - y0 - s + 1, (1,), generator=g))
            xx = x0 + int(torch.randint(40 - s + 1, (1,), generator=g))
            crop = photo[yy:yy + s, xx:xx + s][None, None]
            out[i] = F.interpolate(crop, size=(IMAGE, IMAGE), mode="bilinear", align_corners=False, antialias=True)[0]
            labels[i] = c
        if rotation_labels:
            labels = torch.randint(4, (n,), generator=g)
            out = torch.stack([torch.rot90(out[i], int(labels[i]), (1, 2)) for i in range(n)])
        # Photometric jitter: gain, offset, noise.
        gain = uniform(g, n, 0.7, 1.3)[:, None, None, None]
        off = uniform(g, n, -0.15, 0.15)[:, None, None, None]
        img = (out - 0.5) * gain + 0.5 + off + uniform(g, n, 0.0, 0.04)[:, None, None, None] * torch.randn(out.shape, generator=g)
        return (img.clamp(0, 1) * 255.0).round().to(torch.uint8), labels

    # -- pre-training ---------------------------------------------------------------------------------------
    def pretrain_glyphs(self, n, g):
        cls = torch.randint(len(self.pre_chars), (n,), generator=g)
        idx = torch.tensor([self.pre_by_class[c][int(torch.randint(len(self.pre_by_class[c]), (1,), generator=g))]
                            for c in cls.tolist()])
        mask = warp(self.pre_ink[idx], g, deg(uniform(g, n, -20.0, 20.0)), uniform(g, n, 11.0, 20.0), 0.12)
        return composite(mask, g), cls

    def pretrain_rotation(self, n, g):
        """Self-supervised rotation (0/90/180/270) of photo patches and handwritten digits, training parts only."""
        half = n // 2
        a, la = self.scenes(half, g, "train", rotation_labels=True)
        pool = torch.from_numpy(self.hand_split["train"])
        idx = pool[torch.randint(len(pool), (n - half,), generator=g)]
        mask = warp(self.hand[idx], g, deg(uniform(g, n - half, -10.0, 10.0)), uniform(g, n - half, 13.0, 20.0), 0.1)
        b = composite(mask, g)
        lb = torch.randint(4, (n - half,), generator=g)
        b = torch.stack([torch.rot90(b[i], int(lb[i]), (1, 2)) for i in range(n - half)])
        return torch.cat([a, b]), torch.cat([la, lb])


def num_classes(task, src):
    return {"digits": 10, "housenum": 10, "letters": 26, "greek": 24, "fonts": len(FONT_CLASSES), "arrows": 8,
            "chess": 12, "scenes": 8}[task]


def class_names(task):
    return {"digits": DIGITS, "housenum": DIGITS, "letters": LETTERS, "greek": GREEK,
            "fonts": [f[:-4] for f in FONT_CLASSES], "arrows": ["E", "NE", "N", "NW", "W", "SW", "S", "SE"],
            "chess": CHESS, "scenes": [f"{p}-{q}" for p in ("china", "flower") for q in ("tl", "tr", "bl", "br")]}[task]


# ----------------------------------------------------------------------------------------------------------
# Model, training, evaluation
# ----------------------------------------------------------------------------------------------------------
def new_model():
    from transformers import CLIPVisionConfig, CLIPVisionModel
    cfg = CLIPVisionConfig(**MODEL)
    cfg._attn_implementation = "eager"
    return CLIPVisionModel(cfg)


def pooled(model, u8):
    return model(pixel_values=to_pixels(u8)).pooler_output


def cosine_lr(step, steps, warmup, lr):
    if step < warmup:
        return lr * (step + 1) / warmup
    return lr * 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def pretrain(model, src, cfg, g):
    glyph_head = torch.nn.Linear(MODEL["hidden_size"], len(src.pre_chars))
    rot_head = torch.nn.Linear(MODEL["hidden_size"], 4)
    params = list(model.parameters()) + list(glyph_head.parameters()) + list(rot_head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    n_rot = int(cfg["batch"] * cfg["rot_share"])
    model.train()
    t0 = time.time()
    for step in range(cfg["steps"]):
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, cfg["steps"], cfg["warmup"], cfg["lr"])
        xg, yg = src.pretrain_glyphs(cfg["batch"] - n_rot, g)
        xr, yr = src.pretrain_rotation(n_rot, g)
        h = pooled(model, torch.cat([xg, xr]))
        loss = F.cross_entropy(glyph_head(h[:len(yg)]), yg) + F.cross_entropy(rot_head(h[len(yg):]), yr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 250 == 0 or step == cfg["steps"] - 1:
            acc = (glyph_head(h[:len(yg)]).argmax(1) == yg).float().mean().item()
            log(f"pretrain step {step}: loss {loss.item():.3f}, glyph batch accuracy {acc:.3f}, {time.time() - t0:.0f} s")
    model.eval()


@torch.no_grad()
def features(model, u8, batch=512):
    model.eval()
    return torch.cat([pooled(model, u8[i:i + batch]) for i in range(0, len(u8), batch)])


def linear_probe(feat, y, classes, cfg, g):
    head = torch.nn.Linear(feat.shape[1], classes)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    opt = torch.optim.Adam(head.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    for step in range(cfg["steps"]):
        loss = F.cross_entropy(head(feat), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return head


def finetune(model, head, task, src, cfg, g):
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    model.train()
    for step in range(cfg["steps"]):
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, cfg["steps"], cfg["warmup"], cfg["lr"])
        x, y = src.sample(task, cfg["batch"], g, "train")
        loss = F.cross_entropy(head(pooled(model, x)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()


@torch.no_grad()
def accuracy(model, head, u8, y):
    logits = head(features(model, u8))
    return float((logits.argmax(1) == y).double().mean())


def round_f16(module):
    """Rounds every parameter to float16 and back, in place: the stored weights are then exactly these."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.half().float())


# ----------------------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------------------
def save_hf(model, path):
    """config.json + model.safetensors (float16) in HuggingFace layout."""
    from safetensors.torch import save_file
    os.makedirs(path, exist_ok=True)
    # Hub names of CLIPVisionModel checkpoints ("vision_model." + module path); transformers 5 keeps the
    # modules without that prefix, so it is added here and stripped again in load_hf.
    sd = {"vision_model." + k: v.detach().half().contiguous() for k, v in model.state_dict().items()
          if v.is_floating_point()}
    save_file(sd, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
    cfg = model.config.to_dict()
    for k in ("transformers_version", "_attn_implementation_autoset", "_name_or_path"):
        cfg.pop(k, None)
    cfg["architectures"] = ["CLIPVisionModel"]
    cfg["torch_dtype"] = "float16"
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def load_hf(path):
    """The stored model back, in float32 (what every accuracy below is measured on)."""
    from safetensors.torch import load_file
    model = new_model()
    sd = {k[len("vision_model."):]: v.float() for k, v in load_file(os.path.join(path, "model.safetensors")).items()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected and all("position_ids" in m for m in missing), (missing, unexpected)
    model.eval()
    return model


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=None, help="output folder (default data/zoo, or /tmp/zoo-quick with --quick)")
    ap.add_argument("--quick", action="store_true", help="a few steps of everything (smoke test)")
    args = ap.parse_args()
    out = args.out or ("/tmp/zoo-quick" if args.quick else "data/zoo")
    if args.quick:
        PRETRAIN["steps"], FINETUNE["steps"], PROBE["steps"], PROBE["samples"] = 20, 10, 20, 512
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(SEED)
    t_start = time.time()
    timings = {}

    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    r = Renderer()
    src = Sources(r, args.quick)
    timings["render_s"] = round(src.timing, 1)
    log(f"sources ready: {len(src.pre_chars)} pre-training glyph classes, {src.pre_ink.shape[0]} renders, {src.timing:.1f} s")

    # Fixed evaluation sets and exemplars, each from its own seed.
    sets, exemplars = {}, {}
    for ti, task in enumerate(TASKS):
        for si, split in enumerate(("val", "test")):
            g = torch.Generator().manual_seed(SEED + 1000 * (ti + 1) + si + 1)
            sets[task, split] = src.sample(task, N_VAL if split == "val" else N_TEST, g, split)
        g = torch.Generator().manual_seed(SEED + 1000 * (ti + 1) + 9)
        exemplars[task] = src.sample(task, N_EXEMPLARS, g, "train")[0]

    # Pre-training.
    t0 = time.time()
    torch.manual_seed(SEED + 1)
    base = new_model()
    pretrain(base, src, PRETRAIN, torch.Generator().manual_seed(SEED + 2))
    round_f16(base)
    timings["pretrain_s"] = round(time.time() - t0, 1)
    save_hf(base, os.path.join(out, "base"))
    base = load_hf(os.path.join(out, "base"))
    base_state = {k: v.clone() for k, v in base.state_dict().items()}

    heads, acc = {}, {}
    timings["experts_s"] = {}
    for ti, task in enumerate(TASKS):
        t0 = time.time()
        g = torch.Generator().manual_seed(SEED + 1000 * (ti + 1) + 100)
        x, y = src.sample(task, PROBE["samples"], g, "train")
        head = linear_probe(features(base, x), y, num_classes(task, src), PROBE, g)
        probe_val = accuracy(base, head, *sets[task, "val"])
        model = new_model()
        model.load_state_dict(base_state, strict=False)
        finetune(model, head, task, src, FINETUNE, g)
        round_f16(model)
        round_f16(head)
        save_hf(model, os.path.join(out, "experts", task))
        expert = load_hf(os.path.join(out, "experts", task))
        heads[task] = head
        acc[task] = {split: {"expert": accuracy(expert, head, *sets[task, split]),
                             "base": accuracy(base, head, *sets[task, split])} for split in ("val", "test")}
        acc[task]["probe_head_on_base_val"] = probe_val
        timings["experts_s"][task] = round(time.time() - t0, 1)
        log(f"{task}: base+probe val {probe_val:.4f}; expert val {acc[task]['val']['expert']:.4f} "
            f"test {acc[task]['test']['expert']:.4f}; base+head test {acc[task]['test']['base']:.4f} "
            f"({time.time() - t0:.0f} s)")

    # Heads, evaluation sets, exemplars.
    from safetensors.torch import save_file
    hs = {}
    for task in TASKS:
        hs[f"{task}.weight"] = heads[task].weight.detach().half().contiguous()
        hs[f"{task}.bias"] = heads[task].bias.detach().half().contiguous()
    save_file(hs, os.path.join(out, "heads.safetensors"), metadata={"format": "pt"})
    with h5py.File(os.path.join(out, "eval.h5"), "w", track_order=True) as f:
        f.attrs["pixel_values"] = "images / 127.5 - 1 (float32)"
        for task in TASKS:
            grp = f.create_group(task, track_order=True)
            grp.attrs["classes"] = json.dumps(class_names(task))
            for split in ("val", "test"):
                u8, y = sets[task, split]
                s = grp.create_group(split, track_order=True)
                s.create_dataset("images", data=u8.numpy(), track_times=False)
                s.create_dataset("labels", data=y.numpy().astype(np.int64), track_times=False)
    with h5py.File(os.path.join(out, "exemplars.h5"), "w", track_order=True) as f:
        for task in TASKS:
            f.create_group(task).create_dataset("pixel_values", data=to_pixels(exemplars[task]).numpy(),
                                                track_times=False)

    timings["total_s"] = round(time.time() - t_start, 1)
    record = {
        "measured_by": "tools/zoo/make_zoo.py (torch, float32, eager attention, the stored float16 weights and heads)",
        "tasks": TASKS,
        "accuracy": acc,
        "average": {split: {who: float(np.mean([acc[t][split][who] for t in TASKS])) for who in ("expert", "base")}
                    for split in ("val", "test")},
    }
    with open(os.path.join(out, "expert_accuracy.json"), "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    import PIL
    import PIL.features
    import safetensors
    import sklearn
    import transformers
    files = sorted(p for p in glob.glob(os.path.join(out, "**", "*"), recursive=True) if os.path.isfile(p))
    manifest = {
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "safetensors": safetensors.__version__,
                     "numpy": np.__version__, "h5py": h5py.__version__, "scikit-learn": sklearn.__version__,
                     "Pillow": PIL.__version__, "freetype": PIL.features.version("freetype2")},
        "fonts": {f: sha256(os.path.join(FONT_DIR, f)) for f in FACES},
        "settings": {"seed": SEED, "threads": THREADS, "model": MODEL, "pretrain": PRETRAIN, "probe": PROBE,
                     "finetune": FINETUNE, "n_val": N_VAL, "n_test": N_TEST, "n_exemplars": N_EXEMPLARS,
                     "pretrain_classes": len(src.pre_chars)},
        "files": {os.path.relpath(p, out): sha256(p) for p in files},
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    with open(os.path.join(out, "timings.json"), "w") as f:   # the only file that differs run to run
        json.dump(timings, f, indent=2)
        f.write("\n")
    log(f"wrote {out} in {timings['total_s']:.0f} s; "
        f"average expert test {record['average']['test']['expert']:.4f}, base+heads {record['average']['test']['base']:.4f}")


if __name__ == "__main__":
    main()
