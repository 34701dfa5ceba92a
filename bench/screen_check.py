#!/usr/bin/env python3
"""screen_check.py: how the screen-type check (ev_detect_screen) decides on labelled folders.

Runs `echoview classify --auto-roi` (the check runs before the crop; the model does not matter
for it) on every frame of each folder and prints, per folder and per true class (2D views vs
`other`, the phantom's M-mode/PW/CW/TDI screens), how many frames the check calls 2d, not-2d or
undecided, and the quantiles of its evidence (apex_width, break_rows, fill, area), so the rule's
thresholds can be set on phantom folders and then checked, untouched, on other folders.

A folder holds a manifest.csv (`echoview phantom`: path,label,...) or a labels.csv (`file` and
`mapped_14_view` / `label` / `view`). Nothing is fitted here; it only reads and counts.

    python3 bench/screen_check.py [--echoview build/tools/echoview] [--model M] FOLDER...
"""
import argparse
import csv
import json
import os
import subprocess
import sys


def read_rows(folder):
    for name, file_key in (("manifest.csv", "path"), ("labels.csv", "file")):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            with open(path, newline="", encoding="utf-8-sig") as f:
                rows = list(csv.DictReader(f))
            out = []
            for i, r in enumerate(rows, start=2):
                label = r.get("mapped_14_view") or r.get("label") or r.get("view")
                if not r.get(file_key) or not label:
                    sys.exit(f"{path}:{i}: row without file or label")
                out.append((os.path.join(folder, r[file_key]), label))
            return out
    sys.exit(f"{folder}: no manifest.csv or labels.csv")


def quantiles(values):
    if not values:
        return "-"
    v = sorted(values)
    q = [v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))] for p in (0.0, 0.05, 0.5, 0.95, 1.0)]
    return " / ".join(f"{x:.3f}" for x in q)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--echoview", default="build/tools/echoview")
    ap.add_argument("--model", default="models/echo-2cell-32")
    ap.add_argument("--list", action="store_true", help="also print each frame's decision")
    a = ap.parse_args()
    for folder in a.folders:
        rows = read_rows(folder)
        res = {}
        for start in range(0, len(rows), 200):
            chunk = rows[start:start + 200]
            cmd = [a.echoview, "classify", "--model", a.model, "--auto-roi"] + [f for f, _ in chunk]
            p = subprocess.run(cmd, capture_output=True, text=True)
            for line in p.stdout.splitlines():
                if line.startswith("{"):
                    o = json.loads(line)
                    res[o["file"]] = o
        groups = {}
        for f, label in rows:
            o = res.get(f, {})
            s = o.get("screen")
            kind = "other" if label == "other" else "2D view"
            g = groups.setdefault(kind, {"2d": 0, "not-2d": 0, "undecided": 0, "error": 0,
                                         "ev": {k: [] for k in ("apex_width", "break_rows",
                                                                "fill", "area")}})
            if not s:
                g["error"] += 1
                continue
            g[s["type"]] += 1
            if s["type"] != "undecided":
                for k in g["ev"]:
                    g["ev"][k].append(s[k])
            if a.list:
                print(f"{f},{label},{s['type']},{s['apex_width']:.3f},{s['break_rows']:.3f},"
                      f"{s['fill']:.3f},{s['area']:.3f}")
        print(f"## {folder}: {len(rows)} frames")
        print()
        print("| true class | frames | 2d | not-2d | undecided | apex_width min/p5/p50/p95/max | "
              "break_rows | fill | area |")
        print("|---|---|---|---|---|---|---|---|---|")
        for kind, g in sorted(groups.items()):
            n = g["2d"] + g["not-2d"] + g["undecided"] + g["error"]
            print(f"| {kind} | {n} | {g['2d']} | {g['not-2d']} | {g['undecided']} | "
                  + " | ".join(quantiles(g["ev"][k]) for k in ("apex_width", "break_rows",
                                                               "fill", "area")) + " |")
            if g["error"]:
                print(f"(no screen result for {g['error']} frames)")
        print()


if __name__ == "__main__":
    main()
