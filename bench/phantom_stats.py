#!/usr/bin/env python3
"""phantom_stats.py: simple image statistics of echo frames, to compare phantom and real frames
by numbers as well as by eye.

    python3 bench/phantom_stats.py [--json OUT.json] [--per-image] DIR [DIR ...]

Every PNG/PGM under each DIR (recursively) is read as 8-bit grey (colour frames through the
ITU-R 601 luma). The ultrasound sector is found the same way for every image, phantom or real,
with no ground truth: pixels above 8 after a small box blur, the largest 4-connected region grown from
the densest spots after an opening that drops thin overlays (ECG trace, text, ruler dots), and
its convex hull filled (a fan is convex, so dark blood pools inside it count as sector). Per
image:

  mean, std       grey level inside the sector
  p10, p50, p90   percentiles of the in-sector grey histogram
  dark            share of in-sector pixels below 30 (blood pools, dim tissue)
  bright          share of in-sector pixels above 200
  grain           speckle grain size: the half-width at half maximum of the autocorrelation
                  of the high-passed in-sector image (local 9 % box mean removed), mean of the
                  horizontal and vertical widths, in per mille of the sector's width so
                  112 px crops and 800 px screens compare
  outside         mean grey outside the sector (overlays, text, background)
  fill            sector area / image area

A folder's line is the median over its images of each number (the 25-75 % range with
--per-image). Only aggregate numbers are printed: nothing image-like is written.
"""
import argparse
import json
import os
import sys

try:
    import numpy as np
    from PIL import Image
except ImportError as exc:  # pragma: no cover
    sys.exit(f"phantom_stats.py needs numpy and PIL (Debian: python3-numpy python3-pil): {exc}")

KEYS = ("mean", "std", "p10", "p50", "p90", "dark", "bright", "grain", "outside", "fill")
WORK = 160  # sector detection runs on a copy at most this many pixels wide


def load_grey(path):
    im = Image.open(path)
    if im.mode in ("RGBA", "LA", "P"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (0, 0, 0, 255))
        im = Image.alpha_composite(bg, im)
    if im.mode in ("I;16", "I;16B", "I"):
        a = np.asarray(im, dtype=np.float64)
        a = 255.0 * a / max(a.max(), 1.0)
        return a.astype(np.float32)
    return np.asarray(im.convert("L"), dtype=np.float32)


def box_blur(a, k):
    """Mean over a (2k+1)^2 box, edges clamped (integral image)."""
    if k <= 0:
        return a.copy()
    p = np.pad(a, k + 1, mode="edge").astype(np.float64)
    c = p.cumsum(0).cumsum(1)
    n = 2 * k + 1
    h, w = a.shape
    s = (c[n:n + h, n:n + w] - c[0:h, n:n + w] - c[n:n + h, 0:w] + c[0:h, 0:w])
    return (s / (n * n)).astype(np.float32)


def convex_fill(points, shape):
    """Filled convex hull (monotone chain) of (y, x) points on a grid of shape."""
    pts = sorted(set(points))
    if len(pts) < 3:
        m = np.zeros(shape, dtype=bool)
        for y, x in pts:
            m[y, x] = True
        return m

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    hull = lower[:-1] + upper[:-1]
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    m = np.ones(shape, dtype=bool)
    for i in range(len(hull)):
        (y0, x0), (y1, x1) = hull[i], hull[(i + 1) % len(hull)]
        # the chain runs counter-clockwise in (y, x): the inside is to the left of each edge
        m &= (y1 - y0) * (xx - x0) - (x1 - x0) * (yy - y0) >= -0.5 * (abs(y1 - y0) + abs(x1 - x0))
    return m


def sector_mask(grey):
    h, w = grey.shape
    step = max(1, int(np.ceil(max(h, w) / WORK)))
    small = grey[::step, ::step]
    kb = max(1, small.shape[1] // 40)
    b = box_blur(small, kb) > 8.0
    # thin things (ECG trace, text, ruler dots) must not join the fan: keep only what survives
    # a 5 x 5 opening of the barely blurred image, grown back by the blur's reach
    b0 = box_blur(small, 1) > 8.0
    b0 = box_blur(b0.astype(np.float32), 2) > 0.999
    b &= box_blur(b0.astype(np.float32), kb + 2) > 0.001
    if not b.any():
        return np.zeros_like(grey, dtype=bool)
    # the largest 4-connected region among those grown from the densest spots (text bars and
    # colour scales are smaller than the fan)
    dens = box_blur(b.astype(np.float32), max(2, small.shape[1] // 12))
    left = b.copy()
    m = None
    for _ in range(6):
        if not left.any():
            break
        d = np.where(left, dens, -1.0)
        seed = np.unravel_index(np.argmax(d), d.shape)
        c = np.zeros_like(b)
        c[seed] = True
        while True:
            g = c.copy()
            g[1:, :] |= c[:-1, :]
            g[:-1, :] |= c[1:, :]
            g[:, 1:] |= c[:, :-1]
            g[:, :-1] |= c[:, 1:]
            g &= left
            if (g == c).all():
                break
            c = g
        if m is None or c.sum() > m.sum():
            m = c
        left &= ~c
    pts = []
    for y in range(m.shape[0]):
        xs = np.flatnonzero(m[y])
        if xs.size:
            pts.append((y, int(xs[0])))
            pts.append((y, int(xs[-1])))
    filled = convex_fill(pts, m.shape)
    # the blur widened the region: keep only pixels that are not plain black background
    big = np.repeat(np.repeat(filled, step, 0), step, 1)[:h, :w]
    return big


def half_width(ac):
    """First lag where a normalised 1-D autocorrelation falls below 0.5 (interpolated)."""
    for i in range(1, ac.size):
        if ac[i] < 0.5:
            a0, a1 = ac[i - 1], ac[i]
            return (i - 1) + (a0 - 0.5) / max(a0 - a1, 1e-9)
    return float(ac.size)


def grain_size(grey, mask):
    ys, xs = np.nonzero(mask)
    if xs.size < 64:
        return float("nan")
    sw = xs.max() - xs.min() + 1
    k = max(2, int(0.045 * sw))
    hp = grey - box_blur(grey, k)
    hp[~mask] = 0.0
    # only rows/columns well inside the sector, so the fan's border is not the "grain"
    inner = box_blur(mask.astype(np.float32), k) > 0.999
    hp[~inner] = 0.0
    if inner.sum() < 64:
        return float("nan")
    f = np.fft.rfft2(hp, s=(2 * hp.shape[0], 2 * hp.shape[1]))
    ac = np.fft.irfft2(np.abs(f) ** 2)
    ac = ac / max(ac[0, 0], 1e-9)
    wx = half_width(ac[0, : hp.shape[1]])
    wy = half_width(ac[: hp.shape[0], 0])
    return 1000.0 * 0.5 * (wx + wy) / sw


def image_stats(path):
    g = load_grey(path)
    m = sector_mask(g)
    inside = g[m]
    if inside.size < 64:
        return None
    out = g[~m]
    return {
        "mean": float(inside.mean()),
        "std": float(inside.std()),
        "p10": float(np.percentile(inside, 10)),
        "p50": float(np.percentile(inside, 50)),
        "p90": float(np.percentile(inside, 90)),
        "dark": float((inside < 30).mean()),
        "bright": float((inside > 200).mean()),
        "grain": grain_size(g, m),
        "outside": float(out.mean()) if out.size else 0.0,
        "fill": float(m.mean()),
    }


def folder_images(folder):
    files = []
    for root, _dirs, names in os.walk(folder):
        for n in names:
            if n.lower().endswith((".png", ".pgm")):
                files.append(os.path.join(root, n))
    return sorted(files)


def summarise(per):
    s = {"n": len(per)}
    for k in KEYS:
        v = np.array([p[k] for p in per if np.isfinite(p[k])])
        s[k] = float(np.median(v)) if v.size else float("nan")
        s[k + "_q25"] = float(np.percentile(v, 25)) if v.size else float("nan")
        s[k + "_q75"] = float(np.percentile(v, 75)) if v.size else float("nan")
    return s


def fmt(k, v):
    if k in ("dark", "bright", "fill"):
        return f"{100.0 * v:.1f} %"
    return f"{v:.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--json", help="write the per-folder summaries (and per-image numbers) here")
    ap.add_argument("--per-image", action="store_true", help="print the 25-75 %% range too")
    args = ap.parse_args()
    results = {}
    for d in args.folders:
        if not os.path.isdir(d):
            sys.exit(f"phantom_stats.py: {d}: not a folder")
        files = folder_images(d)
        if not files:
            sys.exit(f"phantom_stats.py: {d}: no PNG or PGM images")
        per = []
        for f in files:
            try:
                st = image_stats(f)
            except (OSError, ValueError) as exc:
                sys.exit(f"phantom_stats.py: {f}: {exc}")
            if st is not None:
                st["file"] = os.path.relpath(f, d)
                per.append(st)
        if not per:
            sys.exit(f"phantom_stats.py: {d}: no image with a detectable sector")
        results[d] = {"summary": summarise(per), "images": per}
    head = "| set | n | " + " | ".join(KEYS) + " |"
    print(head)
    print("|" + "---|" * (len(KEYS) + 2))
    for d, r in results.items():
        s = r["summary"]
        cells = []
        for k in KEYS:
            c = fmt(k, s[k])
            if args.per_image:
                c += f" ({fmt(k, s[k + '_q25'])}-{fmt(k, s[k + '_q75'])})"
            cells.append(c)
        print(f"| {d} | {s['n']} | " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({d: r for d, r in results.items()}, f, indent=1)


if __name__ == "__main__":
    main()
