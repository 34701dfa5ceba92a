#!/usr/bin/env python3
"""real_frames_eval.py: scores a model bundle on a folder of labelled real echo frames.

The folder holds the frames and a labels.csv with at least the columns `file` (path relative to
the folder) and the true view (`mapped_14_view`, or `label` / `view`); optional columns
`source_repo` (the source dataset) and `notes` (a `clip=ID` entry groups frames of one cine
loop). A true label of `other` marks a non-2D screen (spectral Doppler, M-mode): it counts as
right when the model says `other` or `unknown`.

The frames are read where they are; nothing is copied and nothing is fitted on them. Output: a
markdown report (overall, per view, per acoustic window, per source, per clip, confusions) on
stdout, and with --json FILE the per-frame predictions and the tables as JSON.

    python3 bench/real_frames_eval.py --model models/echo-2cell-96 FOLDER [--json out.json]

classify runs with --auto-roi (unless --no-auto-roi), which checks the screen type first: a frame
without a 2D fan is answered `other` (ev_detect_screen); --no-screen-check scores the network's
own answers on the same crops.
"""
import argparse
import collections
import csv
import json
import os
import subprocess
import sys

WINDOWS = {
    "A2CH": "apical", "A3CH": "apical", "A4CH-LV": "apical", "A4CH-RV": "apical",
    "A5CH": "apical", "Apical-LA/MV": "apical",
    "PLAX-TV": "parasternal", "PLAX-full": "parasternal", "PLAX-valves": "parasternal",
    "PSAX-AV": "parasternal", "PSAX-LV": "parasternal",
    "Subcostal-IVC": "subcostal", "Subcostal": "subcostal",
    "Suprasternal": "suprasternal",
    "other": "other", "unknown": "unknown",
}
NON_VIEW = ("other", "unknown")


def read_labels(folder):
    path = os.path.join(folder, "labels.csv")
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    out = []
    for i, r in enumerate(rows, start=2):
        truth = r.get("mapped_14_view") or r.get("label") or r.get("view")
        if not r.get("file") or not truth:
            sys.exit(f"{path}:{i}: row without file or label")
        clip = ""
        for part in (r.get("notes") or "").replace(",", ";").split(";"):
            part = part.strip()
            if part.startswith("clip="):
                clip = part[5:]
        source = r.get("source_repo") or os.path.dirname(r["file"]) or "?"
        out.append({"file": r["file"], "truth": truth, "source": source,
                    "clip": clip or r["file"]})
    return out


def classify(echoview, model, folder, rows, backend, extra):
    files = [os.path.join(folder, r["file"]) for r in rows]
    cmd = [echoview, "classify", "--model", model, "--backend", backend] + extra + files
    res = subprocess.run(cmd, capture_output=True, text=True)
    preds = {}
    for line in res.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            o = json.loads(line)
            preds[o["file"]] = o
    if not preds:
        sys.exit(f"classify printed nothing (exit {res.returncode}): {res.stderr.strip()}")
    for r, f in zip(rows, files):
        o = preds.get(f, {"error": "no output"})
        r["pred"] = o.get("label", "error")
        # below a calibrated model's threshold the label is "unknown"; best_guess is the top class
        r["top1"] = o.get("best_guess", r["pred"])
        r["confidence"] = o.get("confidence", 0.0)
        r["probabilities"] = o.get("probabilities")
        r["screen"] = (o.get("screen") or {}).get("type", "")
        if "error" in o:
            r["error"] = o["error"]


def right(truth, pred):
    if truth in NON_VIEW:
        return pred in NON_VIEW
    return truth == pred


def window_right(truth, pred):
    return WINDOWS.get(truth, truth) == WINDOWS.get(pred, pred) or (
        truth in NON_VIEW and pred in NON_VIEW)


def pct(a, b):
    return f"{100.0 * a / b:.1f}" if b else "-"


def table(title, key, rows):
    groups = collections.OrderedDict()
    for r in sorted(rows, key=lambda r: key(r)):
        groups.setdefault(key(r), []).append(r)
    lines = [f"### {title}", "", "| group | frames | right | accuracy | right window | "
             "mean confidence | most common prediction |", "|---|---|---|---|---|---|---|"]
    out = {}
    for g, rs in groups.items():
        n = len(rs)
        ok = sum(right(r["truth"], r["pred"]) for r in rs)
        okw = sum(window_right(r["truth"], r["pred"]) for r in rs)
        conf = sum(r["confidence"] for r in rs) / n
        common = collections.Counter(r["pred"] for r in rs).most_common(2)
        lines.append(f"| {g} | {n} | {ok} | {pct(ok, n)} | {pct(okw, n)} | {conf:.2f} | "
                     + ", ".join(f"{p} ({c})" for p, c in common) + " |")
        out[g] = {"frames": n, "right": ok, "right_window": okw, "mean_confidence": conf}
    return lines + [""], out


def clip_table(rows):
    """Per clip: the clip's label is the class with the highest mean probability over its frames
    (the per-loop decision a reporting system makes), where probabilities are known."""
    clips = collections.OrderedDict()
    for r in rows:
        clips.setdefault((r["source"], r["clip"]), []).append(r)
    ok = okw = 0
    for (_, _), rs in clips.items():
        probs = [r["probabilities"] for r in rs if r.get("probabilities")]
        if probs and all(len(p) == len(probs[0]) for p in probs) and isinstance(probs[0], dict):
            mean = {k: sum(p[k] for p in probs) / len(probs) for k in probs[0]}
            label = max(mean, key=mean.get)
        else:
            label = collections.Counter(r["pred"] for r in rs).most_common(1)[0][0]
        ok += right(rs[0]["truth"], label)
        okw += window_right(rs[0]["truth"], label)
    return len(clips), ok, okw


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--model", required=True)
    ap.add_argument("--echoview", default="build/tools/echoview")
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--no-auto-roi", action="store_true",
                    help="classify the whole frame (default: --auto-roi)")
    ap.add_argument("--no-screen-check", action="store_true",
                    help="leave out the screen-type check that runs with --auto-roi")
    ap.add_argument("--json", help="write per-frame predictions and tables here")
    a = ap.parse_args()

    rows = read_labels(a.folder)
    extra = [] if a.no_auto_roi else ["--auto-roi"]
    if a.no_screen_check and not a.no_auto_roi:
        extra.append("--no-screen-check")
    classify(a.echoview, a.model, a.folder, rows, a.backend, extra)
    n = len(rows)
    ok = sum(right(r["truth"], r["pred"]) for r in rows)
    okw = sum(window_right(r["truth"], r["pred"]) for r in rows)
    two_d = [r for r in rows if r["truth"] not in NON_VIEW]
    non2d = [r for r in rows if r["truth"] in NON_VIEW]
    nclips, cok, cokw = clip_table(rows)
    errors = [r for r in rows if "error" in r]

    print(f"## {a.model} on {a.folder}: {n} frames, {nclips} clips")
    print()
    print(f"- frames right: {ok}/{n} ({pct(ok, n)} %); right acoustic window: {okw}/{n} "
          f"({pct(okw, n)} %)")
    if two_d:
        k = sum(right(r["truth"], r["pred"]) for r in two_d)
        print(f"- 2D frames right: {k}/{len(two_d)} ({pct(k, len(two_d))} %)")
    if non2d:
        k = sum(right(r["truth"], r["pred"]) for r in non2d)
        print(f"- Doppler/M-mode screens labelled other or unknown: {k}/{len(non2d)} "
              f"({pct(k, len(non2d))} %)")
    print(f"- clips right (mean probabilities over the clip): {cok}/{nclips} "
          f"({pct(cok, nclips)} %); right window: {cokw}/{nclips} ({pct(cokw, nclips)} %)")
    unknown = [r for r in rows if r["pred"] == "unknown"]
    if unknown:
        k = sum(r["truth"] == r["top1"] for r in two_d)
        kw = sum(window_right(r["truth"], r["top1"]) for r in two_d)
        print(f"- answered unknown (below the model's calibrated threshold): {len(unknown)}/{n}; "
              f"2D frames whose top class is right: {k}/{len(two_d)} ({pct(k, len(two_d))} %), "
              f"right window {kw}/{len(two_d)} ({pct(kw, len(two_d))} %)")
        k = sum(r["truth"] == r["pred"] for r in two_d)
        answered = [r for r in two_d if r["pred"] != "unknown"]
        print(f"- 2D frames answered with a view: {len(answered)}; right among them: {k} "
              f"({pct(k, len(answered))} %)")
    rejected = [r for r in two_d if r["screen"] == "not-2d"]
    if any(r["screen"] for r in rows):
        print(f"- 2D frames the screen check calls not 2D (answered other): {len(rejected)}/"
              f"{len(two_d)}")
    wrong = [r for r in rows if not right(r["truth"], r["pred"])]
    if wrong:
        hi = sum(r["confidence"] >= 0.9 for r in wrong)
        print(f"- wrong frames at confidence >= 0.9: {hi}/{len(wrong)}")
    if errors:
        print(f"- unreadable frames: {len(errors)} (first: {errors[0]['file']}: "
              f"{errors[0]['error']})")
    print()
    report = {"model": a.model, "frames": n, "right": ok, "right_window": okw,
              "unknown": len(unknown), "screen_not_2d": len(rejected),
              "clips": nclips, "clips_right": cok, "clips_right_window": cokw}
    for title, key in (("Per true view", lambda r: r["truth"]),
                       ("Per source dataset", lambda r: r["source"])):
        lines, tab = table(title, key, rows)
        print("\n".join(lines))
        report[title] = tab
    conf = collections.Counter((r["truth"], r["pred"]) for r in rows if not right(r["truth"],
                                                                                   r["pred"]))
    print("### Largest confusions (true -> predicted)")
    print()
    for (t, p), c in conf.most_common(10):
        print(f"- {t} -> {p}: {c}")
    print()
    if a.json:
        report["frames_detail"] = [{k: r[k] for k in ("file", "truth", "pred", "top1", "confidence",
                                                       "source", "clip")} for r in rows]
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
