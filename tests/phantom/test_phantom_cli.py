#!/usr/bin/env python3
"""test_phantom_cli.py ECHOVIEW: `echoview phantom` with --phantom-version, --color-share,
--other-share and the view `other`: version 1 is the default and byte-identical to asking for
it; version 2 is deterministic per seed and thread count; `other` screens come at the exact
requested share (floor(loops x share)), labelled `other` under DIR/other/; colour boxes give RGB
PNGs (every 2D loop at share 1, none at 0); bad values and version-2 options on version 1 are
usage errors (exit 2) that name the problem. Standard library only."""
import csv
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'common'))
from testlib import check, finish  # noqa: E402

ECHOVIEW = sys.argv[1]


def run(*args):
    p = subprocess.run([ECHOVIEW, "phantom", *args], capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def manifest(d):
    with open(os.path.join(d, "manifest.csv"), newline="") as f:
        return list(csv.DictReader(f))


def png_colour_type(path):
    with open(path, "rb") as f:
        head = f.read(26)
    return head[25] if head[:8] == b"\x89PNG\r\n\x1a\n" else -1


def tree_bytes(d):
    out = {}
    for root, _dirs, names in os.walk(d):
        for n in names:
            p = os.path.join(root, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, d)] = f.read()
    return out


with tempfile.TemporaryDirectory() as tmp:
    base = ["--patients", "2", "--frames-per-patient", "1", "--seed", "3", "--size", "64"]
    # version 1 is the default
    rc1, _, _ = run("--out", f"{tmp}/d", *base)
    rc2, _, _ = run("--out", f"{tmp}/v1", *base, "--phantom-version", "1")
    check(rc1 == 0 and rc2 == 0, "version 1 runs")
    check(tree_bytes(f"{tmp}/d") == tree_bytes(f"{tmp}/v1"),
          "the default is version 1, byte for byte")
    # version 2: determinism per seed and thread count, and different from version 1
    v2 = base + ["--phantom-version", "2", "--other-share", "0.25", "--color-share", "0.5"]
    rc1, _, err1 = run("--out", f"{tmp}/a", *v2, "--threads", "1")
    rc2, _, err2 = run("--out", f"{tmp}/b", *v2, "--threads", "2")
    check(rc1 == 0 and rc2 == 0, f"version 2 runs ({err1.strip()} {err2.strip()})")
    ta, tb = tree_bytes(f"{tmp}/a"), tree_bytes(f"{tmp}/b")
    check(ta == tb and len(ta) == 29, f"version 2 identical on 1 and 2 threads ({len(ta)} files)")
    common = set(ta) & set(tree_bytes(f"{tmp}/v1"))
    check(all(ta[k] != tree_bytes(f"{tmp}/v1")[k] for k in common if k.endswith(".png")),
          "version 2 frames differ from version 1")
    rows = manifest(f"{tmp}/a")
    other = [r for r in rows if r["label"] == "other"]
    check(len(rows) == 28 and len(other) == 7,
          f"other-share 0.25 of 28 loops gives exactly 7 `other` rows ({len(other)} of {len(rows)})")
    check(all(r["path"].startswith("other/") and os.path.isfile(os.path.join(tmp, "a", r["path"]))
              for r in other), "`other` frames live under other/")
    views = {r["label"] for r in rows if r["label"] != "other"}
    check(len(views) >= 10, f"the 2D rows keep their view labels ({len(views)} views)")
    # colour share 1: every 2D frame is an RGB PNG; share 0: none
    rc, _, _ = run("--out", f"{tmp}/c1", *base, "--phantom-version", "2", "--color-share", "1")
    types = {png_colour_type(os.path.join(tmp, "c1", r["path"])) for r in manifest(f"{tmp}/c1")}
    check(rc == 0 and types == {2}, f"color-share 1: all frames RGB (colour types {types})")
    rc, _, _ = run("--out", f"{tmp}/c0", *base, "--phantom-version", "2")
    types = {png_colour_type(os.path.join(tmp, "c0", r["path"])) for r in manifest(f"{tmp}/c0")}
    check(rc == 0 and types == {0}, f"color-share 0: all frames grey (colour types {types})")
    # --views other: only non-2D screens, full-frame region = whole frame
    rc, _, err = run("--out", f"{tmp}/o", "--patients", "3", "--frames-per-patient", "2",
                     "--views", "other,A4CH-LV", "--phantom-version", "2",
                     "--full-frame", "200x150")
    rows = manifest(f"{tmp}/o")
    other = [r for r in rows if r["label"] == "other"]
    check(rc == 0 and len(rows) == 12 and len(other) == 6,
          f"--views other,A4CH-LV: 6 other + 6 A4CH-LV rows ({len(other)} of {len(rows)}) {err}")
    check(all((r["roi_x"], r["roi_y"], r["roi_w"], r["roi_h"]) == ("0", "0", "200", "150")
              for r in other), "an `other` screen's region is the whole frame")
    # an `other` loop of a 2D slot and one of the `other` slot never share a file name
    rc, _, _ = run("--out", f"{tmp}/o2", "--patients", "2", "--frames-per-patient", "2",
                   "--views", "A4CH-LV,other", "--phantom-version", "2", "--other-share", "1")
    rows = manifest(f"{tmp}/o2")
    paths = {r["path"] for r in rows}
    check(rc == 0 and len(rows) == 8 and len(paths) == 8 and all(r["label"] == "other" for r in rows),
          f"other-share 1 with `other` in --views: 8 rows, 8 distinct files ({len(paths)})")
    # bad options
    bad = [
        (["--phantom-version", "3"], "--phantom-version 1 or 2"),
        (["--phantom-version", "2", "--other-share", "1.5"], "--other-share needs a number in 0..1"),
        (["--phantom-version", "2", "--color-share", "abc"], "--color-share needs a number in 0..1"),
        (["--phantom-version", "2", "--color-share", "-0.1"], "--color-share needs a number in 0..1"),
        (["--other-share", "0.2"], "need --phantom-version 2"),
        (["--color-share", "0.2"], "need --phantom-version 2"),
        (["--views", "other"], "need --phantom-version 2"),
        (["--phantom-version", "2", "--views", "others"], "unknown view 'others'"),
    ]
    for args, msg in bad:
        rc, _, err = run("--out", f"{tmp}/bad", *base, *args)
        check(rc == 2 and msg in err, f"{' '.join(args)}: exit 2 with '{msg}' (got {rc}: "
                                      f"{err.strip().splitlines()[0] if err.strip() else ''})")

finish()
