#!/usr/bin/env python3
"""Builds the expert zoo under data/zoo/ (see tools/zoo/README.md and data/zoo/README.md).

A small vision transformer with HuggingFace CLIPVisionModel names and config (catmerge reads it as clip_vit)
is pre-trained on a broad objective (identity of ~1000 Unicode glyphs rendered from the installed DejaVu
fonts in six looks, plus rotation prediction on photo patches and handwritten digits). Each of 8 tasks then
gets a "zero-shot" head (class prototypes from plain renders of the class, as CLIP's head comes from text)
and an expert: the backbone and that head fine-tuned together, gently, on the task's training images. The
tasks are built from offline images: scikit-learn's handwritten digits and sample photographs, and glyphs
rendered from the DejaVu fonts.

Everything is seeded; with the same versions (python, torch, transformers, Pillow/FreeType, scikit-learn,
fonts) and the same thread count the files come out bit for bit the same (timings.json aside). Run from the
repository root:

    python3 tools/zoo/make_zoo.py            # writes data/zoo/ (about 30 minutes on 2 cores)
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
FINETUNE = dict(steps=500, batch=64, lr=5e-5, warmup=50, weight_decay=0.0)
N_VAL, N_TEST, N_EXEMPLARS = 256, 512, 16
TASKS = ["digits", "housenum", "letters", "greek", "fonts", "arrows", "chess", "distort"]
# The distort task: what was done to a photo patch.
DISTORTIONS = ["clean", "blur", "smear-h", "smear-v", "noise", "posterize"]

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
# Each task has its own look, as real benchmarks do (MNIST is white on black, SVHN is photographed, ...);
# pre-training draws every glyph in a random one of these looks, so the base has seen them all.
STYLES = ["paper", "night", "noisy", "photo", "board", "sign"]
TASK_STYLE = {"digits": "night", "housenum": "photo", "letters": "paper", "greek": "noisy", "fonts": "paper",
              "arrows": "sign", "chess": "board"}


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


def quantize(img):
    return (img.clamp(0, 1) * 255.0).round().to(torch.uint8)


def noise(img, g, lo, hi):
    n = img.shape[0]
    return img + uniform(g, n, lo, hi)[:, None, None, None] * torch.randn(img.shape, generator=g)


def col(v):
    return v[:, None, None, None]


def stylize(mask, g, style, photo_bg=None):
    """Ink mask [n, 1, 24, 24] in [0, 1] -> uint8 image in one of the STYLES:
    paper: dark ink on light paper; night: light ink on black; noisy: either polarity on mid grey, heavy noise;
    photo: either polarity on a photo patch (photo_bg, [n, 1, 24, 24] in [0, 1]); board: dark ink on a
    checkerboard; sign: light ink on a dark disc over a light background."""
    n = mask.shape[0]
    if style == "paper":
        bg, ink = uniform(g, n, 0.7, 1.0), uniform(g, n, 0.0, 0.3)
        return quantize(noise(col(bg) + col(ink - bg) * mask, g, 0.0, 0.03))
    if style == "night":
        bg, ink = uniform(g, n, 0.0, 0.15), uniform(g, n, 0.75, 1.0)
        return quantize(noise(col(bg) + col(ink - bg) * mask, g, 0.0, 0.03))
    if style == "noisy":
        bg = uniform(g, n, 0.3, 0.7)
        sign = torch.where(torch.rand(n, generator=g) < 0.5, -torch.ones(n), torch.ones(n))
        ink = bg + sign * uniform(g, n, 0.3, 0.45)
        return quantize(noise(col(bg) + col(ink - bg) * mask, g, 0.04, 0.08))
    if style == "photo":
        bg = 0.5 + (photo_bg - 0.5) * col(uniform(g, n, 0.4, 0.7))
        level = bg.mean(dim=(1, 2, 3))
        ink = torch.where(level < 0.5, uniform(g, n, 0.85, 1.0), uniform(g, n, 0.0, 0.15))
        return quantize(noise(bg + (col(ink) - bg) * mask, g, 0.0, 0.04))
    if style == "board":
        period = uniform(g, n, 10.0, 16.0)
        ys, xs = torch.meshgrid(torch.arange(IMAGE).float(), torch.arange(IMAGE).float(), indexing="ij")
        px, py = uniform(g, n, 0.0, 16.0), uniform(g, n, 0.0, 16.0)
        cx = torch.floor((xs[None] + px[:, None, None]) / period[:, None, None])
        cy = torch.floor((ys[None] + py[:, None, None]) / period[:, None, None])
        light, dark = uniform(g, n, 0.7, 0.95), uniform(g, n, 0.45, 0.6)
        board = torch.where(((cx + cy) % 2) == 0, light[:, None, None], dark[:, None, None])[:, None]
        ink = uniform(g, n, 0.0, 0.12)
        return quantize(noise(board + (col(ink) - board) * mask, g, 0.0, 0.03))
    if style == "sign":
        ys, xs = torch.meshgrid(torch.arange(IMAGE).float() + 0.5, torch.arange(IMAGE).float() + 0.5, indexing="ij")
        cx, cy, rad = uniform(g, n, 11.0, 13.0), uniform(g, n, 11.0, 13.0), uniform(g, n, 10.0, 12.0)
        d = ((xs[None] - cx[:, None, None]) ** 2 + (ys[None] - cy[:, None, None]) ** 2).sqrt()
        disc = (rad[:, None, None] - d + 0.5).clamp(0, 1)[:, None]
        bg, plate, ink = uniform(g, n, 0.5, 0.95), uniform(g, n, 0.05, 0.3), uniform(g, n, 0.85, 1.0)
        img = col(bg) + col(plate - bg) * disc
        img = img + (col(ink) - img) * mask
        return quantize(noise(img, g, 0.0, 0.03))
    raise ValueError(style)


def deg(x):
    return x * math.pi / 180.0


def texture(x):
    """Mean absolute difference of horizontally and vertically neighbouring pixels of x [1, 1, H, W]."""
    return 0.5 * float((x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean())


def apply_distortion(x, k, g):
    """x: [n, 1, 24, 24] in [0, 1]; k indexes DISTORTIONS."""
    name = DISTORTIONS[k]
    if name == "clean":
        return x
    if name == "blur":
        return F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    if name == "smear-h":
        return F.avg_pool2d(F.pad(x, (2, 2, 0, 0), mode="replicate"), (1, 5), stride=1)
    if name == "smear-v":
        return F.avg_pool2d(F.pad(x, (0, 0, 2, 2), mode="replicate"), (5, 1), stride=1)
    if name == "noise":
        return x + 0.1 * torch.randn(x.shape, generator=g)
    if name == "posterize":
        return torch.round(x * 3.0) / 3.0
    raise ValueError(name)


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
        # Photos: grey (ITU-R 601 weights), full resolution 427 x 640; split into cells (photo_cells).
        imgs = load_sample_images().images
        self.photos_full = []
        for im in imgs:
            grey = torch.from_numpy(im.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255.0
            self.photos_full.append(grey)
        self.timing = time.time() - t0

    # -- task samplers: (uint8 [n, 1, 24, 24], labels int64 [n]) ---------------------------------------------
    def styled(self, mask, g, style, split):
        bg = self.photo_patches(mask.shape[0], g, split)[0] if style == "photo" else None
        return stylize(mask, g, style, bg)

    def glyph_task(self, name, n, g, split, rot=15.0, hmin=11.0, hmax=20.0):
        ink, labels, by_class = self.banks[name]
        cls = torch.randint(len(by_class), (n,), generator=g)
        idx = torch.tensor([by_class[c][int(torch.randint(len(by_class[c]), (1,), generator=g))] for c in cls.tolist()])
        mask = warp(ink[idx], g, deg(uniform(g, n, -rot, rot)), uniform(g, n, hmin, hmax), 0.12)
        return self.styled(mask, g, TASK_STYLE[name], split), labels[idx].long()

    def sample(self, task, n, g, split):
        if task == "letters":
            return self.glyph_task("letters", n, g, split, rot=20.0)
        if task == "greek":
            return self.glyph_task("greek", n, g, split, rot=20.0)
        if task == "chess":
            return self.glyph_task("chess", n, g, split, rot=10.0, hmin=14.0, hmax=20.0)
        if task == "fonts":
            return self.glyph_task("fonts", n, g, split, rot=0.0, hmin=15.0, hmax=21.0)
        if task == "arrows":
            ink, _, by_class = self.banks["arrows"]
            idx = torch.randint(ink.shape[0], (n,), generator=g)
            direction = torch.randint(8, (n,), generator=g)
            angle = deg(45.0 * direction.float() + uniform(g, n, -12.0, 12.0))
            mask = warp(ink[idx], g, angle, uniform(g, n, 11.0, 16.0), 0.05)
            return self.styled(mask, g, TASK_STYLE["arrows"], split), direction
        if task == "housenum":
            return self.housenum(n, g, split)
        if task == "digits":
            return self.digits(n, g, split)
        if task == "distort":
            return self.distort(n, g, split)
        raise ValueError(task)

    def housenum(self, n, g, split):
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
        return self.styled(mask, g, TASK_STYLE["housenum"], split), y

    def digits(self, n, g, split):
        pool = self.hand_split[split]
        if split != "train":
            assert n == len(pool)
            idx = torch.from_numpy(pool)
        else:
            idx = torch.from_numpy(pool)[torch.randint(len(pool), (n,), generator=g)]
        mask = warp(self.hand[idx], g, deg(uniform(g, n, -15.0, 15.0)), uniform(g, n, 13.0, 20.0), 0.1)
        return self.styled(mask, g, TASK_STYLE["digits"], split), self.hand_label[idx]

    def rotated_patches(self, n, g):
        """Pre-training: photo patches (training cells) turned by 0/90/180/270 degrees; label = the turn."""
        out, _ = self.photo_patches(n, g, "train")
        labels = torch.randint(4, (n,), generator=g)
        out = torch.stack([torch.rot90(out[i], int(labels[i]), (1, 2)) for i in range(n)])
        img = (out - 0.5) * col(uniform(g, n, 0.7, 1.3)) + 0.5 + col(uniform(g, n, -0.15, 0.15))
        return quantize(noise(img, g, 0.0, 0.04)), labels

    def photo_cells(self, c, split):
        """Cells (row, col) of quadrant c % 4 of photo c // 4 that belong to `split`. Each photo (full
        resolution) is cut into 8 x 16 cells of 53 x 40 pixels; each quadrant's 32 cells are dealt to train (20),
        val (6) and test (6) by a seeded permutation, so the splits never share a pixel."""
        qy, qx = (c % 4) // 2, (c % 4) % 2
        cells = [(qy * 4 + i, qx * 8 + j) for i in range(4) for j in range(8)]
        perm = np.random.RandomState(SEED + 17 * c).permutation(len(cells))
        part = {"train": perm[:20], "val": perm[20:26], "test": perm[26:]}[split]
        return [cells[i] for i in sorted(part)]

    def photo_patches(self, n, g, split):
        """Square crops of 28-40 pixels inside one cell of the split (photo_cells), resized to 24 x 24: float
        [n, 1, 24, 24] in [0, 1] (and which photo and quadrant they come from). Only cells with texture are used
        (mean absolute difference of neighbouring pixels at least 0.03 over the cell), and a crop under 0.04 is
        drawn again, up to 100 times."""
        if not hasattr(self, "textured"):
            # Cells with something in them: texture of the whole cell (resized to 24 x 24) at least 0.03.
            self.textured = {}
            for sp in ("train", "val", "test"):
                self.textured[sp] = []
                for c in range(8):
                    for row, column in self.photo_cells(c, sp):
                        cell = self.photos_full[c // 4][row * 53:row * 53 + 53, column * 40:column * 40 + 40]
                        small = F.interpolate(cell[None, None], size=(IMAGE, IMAGE), mode="bilinear",
                                              align_corners=False, antialias=True)
                        if texture(small) >= 0.03:
                            self.textured[sp].append((c, row, column))
        cells = self.textured[split]
        size = torch.randint(28, 41, (n,), generator=g)
        cls = torch.empty(n, dtype=torch.long)
        out = torch.empty(n, 1, IMAGE, IMAGE)
        for i in range(n):
            s = int(size[i])
            for attempt in range(100):   # skip featureless crops (clear sky, out-of-focus background)
                c, row, column = cells[int(torch.randint(len(cells), (1,), generator=g))]
                yy = row * 53 + int(torch.randint(53 - s + 1, (1,), generator=g))
                xx = column * 40 + int(torch.randint(40 - s + 1, (1,), generator=g))
                crop = self.photos_full[c // 4][yy:yy + s, xx:xx + s][None, None]
                patch = F.interpolate(crop, size=(IMAGE, IMAGE), mode="bilinear", align_corners=False, antialias=True)
                if texture(patch) >= 0.04:
                    break
            cls[i] = c
            out[i] = patch[0]
        return out, cls

    def distort(self, n, g, split):
        """Which of DISTORTIONS was applied to a photo patch (photometric jitter and faint noise on top)."""
        out, _ = self.photo_patches(n, g, split)
        labels = torch.randint(len(DISTORTIONS), (n,), generator=g)
        out = torch.cat([apply_distortion(out[i:i + 1], int(labels[i]), g) for i in range(n)])
        img = (out - 0.5) * col(uniform(g, n, 0.8, 1.2)) + 0.5 + col(uniform(g, n, -0.1, 0.1))
        return quantize(noise(img, g, 0.0, 0.01)), labels

    # -- the "zero-shot" heads: each class described by clean renders, like CLIP's text prompts --------------
    def canonical(self, task, r):
        """Per class, uint8 [k, 1, 24, 24]: the class drawn plainly (upright, 16 pixels high, black on white and
        white on black, in DejaVu Sans, Serif and Sans Mono), never a training image of the task itself; for
        distort, the distortion applied to the middle 40 x 40 of 16 fixed training cells."""
        faces = ["DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf"]

        def plain(inks, height=16.0, angles=None):
            ink = smooth(np.stack(inks))
            n = ink.shape[0]
            ang = torch.zeros(n) if angles is None else angles
            z = height / (RENDER_PX * 0.5)
            c, s = torch.cos(ang) / z, torch.sin(ang) / z
            zero = torch.zeros(n)
            theta = torch.stack([torch.stack([c, -s, zero], 1), torch.stack([s, c, zero], 1)], 1)
            grid = F.affine_grid(theta, (n, 1, IMAGE, IMAGE), align_corners=False)
            mask = F.grid_sample(ink, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            return torch.cat([quantize(1.0 - mask), quantize(mask)])

        if task in ("letters", "greek", "chess", "housenum", "digits"):
            chars = {"letters": LETTERS, "greek": GREEK, "chess": CHESS, "housenum": DIGITS, "digits": DIGITS}[task]
            return [plain([a for a in (r.render(ch, f) for f in faces) if a is not None]) for ch in chars]
        if task == "fonts":
            return [plain([r.render(ch, f) for ch in "abcdefghijklmnopqrstuvwxyz"], height=18.0) for f in FONT_CLASSES]
        if task == "arrows":
            inks = [a for a in (r.render(ch, "DejaVuSans.ttf") for ch in ARROWS) if a is not None]
            return [plain(inks, angles=torch.full((len(inks),), deg(45.0 * d))) for d in range(8)]
        if task == "distort":
            crops = [self.photos_full[c // 4][r0 * 53 + 6:r0 * 53 + 46, c0 * 40:c0 * 40 + 40]
                     for c in range(8) for r0, c0 in self.photo_cells(c, "train")[:2]]
            ims = torch.stack([F.interpolate(a[None, None], size=(IMAGE, IMAGE), mode="bilinear", antialias=True,
                                             align_corners=False)[0] for a in crops])
            return [quantize(apply_distortion(ims, k, torch.Generator().manual_seed(SEED + k)))
                    for k in range(len(DISTORTIONS))]
        raise ValueError(task)

    # -- pre-training ---------------------------------------------------------------------------------------
    def random_styles(self, mask, g):
        """Each image in a random one of the STYLES (photo backgrounds from the training cells only)."""
        n = mask.shape[0]
        which = torch.randint(len(STYLES), (n,), generator=g)
        out = torch.empty(n, 1, IMAGE, IMAGE, dtype=torch.uint8)
        for k, style in enumerate(STYLES):
            sel = torch.nonzero(which == k).flatten()
            if len(sel):
                out[sel] = self.styled(mask[sel], g, style, "train")
        return out

    def pretrain_glyphs(self, n, g):
        cls = torch.randint(len(self.pre_chars), (n,), generator=g)
        idx = torch.tensor([self.pre_by_class[c][int(torch.randint(len(self.pre_by_class[c]), (1,), generator=g))]
                            for c in cls.tolist()])
        mask = warp(self.pre_ink[idx], g, deg(uniform(g, n, -20.0, 20.0)), uniform(g, n, 11.0, 20.0), 0.12)
        return self.random_styles(mask, g), cls

    def pretrain_rotation(self, n, g):
        """Self-supervised rotation (0/90/180/270) of photo patches and handwritten digits, training parts only."""
        half = n // 2
        a, la = self.rotated_patches(half, g)
        pool = torch.from_numpy(self.hand_split["train"])
        idx = pool[torch.randint(len(pool), (n - half,), generator=g)]
        mask = warp(self.hand[idx], g, deg(uniform(g, n - half, -10.0, 10.0)), uniform(g, n - half, 13.0, 20.0), 0.1)
        b = self.random_styles(mask, g)
        lb = torch.randint(4, (n - half,), generator=g)
        b = torch.stack([torch.rot90(b[i], int(lb[i]), (1, 2)) for i in range(n - half)])
        return torch.cat([a, b]), torch.cat([la, lb])


def class_names(task):
    return {"digits": DIGITS, "housenum": DIGITS, "letters": LETTERS, "greek": GREEK,
            "fonts": [f[:-4] for f in FONT_CLASSES], "arrows": ["E", "NE", "N", "NW", "W", "SW", "S", "SE"],
            "chess": CHESS, "distort": DISTORTIONS}[task]


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


@torch.no_grad()
def prototype_head(model, per_class):
    """The "zero-shot" head: row c = the unit mean of the unit pooled features of class c's plain renders
    (Sources.canonical), bias 0 -- a cosine classifier, as CLIP's head is built from text embeddings."""
    rows = []
    for ims in per_class:
        f = features(model, ims)
        f = f / f.norm(dim=1, keepdim=True)
        p = f.mean(0)
        rows.append(p / p.norm())
    w = torch.stack(rows)
    head = torch.nn.Linear(w.shape[1], w.shape[0])
    head.weight.copy_(w)
    head.bias.zero_()
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
        PRETRAIN["steps"], FINETUNE["steps"] = 20, 10
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
        head = prototype_head(base, src.canonical(task, r))
        zero_shot = {split: accuracy(base, head, *sets[task, split]) for split in ("val", "test")}
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
        acc[task]["base_zero_shot_head"] = zero_shot
        timings["experts_s"][task] = round(time.time() - t0, 1)
        log(f"{task}: zero-shot val {zero_shot['val']:.4f}; expert val {acc[task]['val']['expert']:.4f} "
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
        "settings": {"seed": SEED, "threads": THREADS, "model": MODEL, "pretrain": PRETRAIN,
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
