#!/usr/bin/env python3
"""CLI contract of the search commands: `echoview phantom` writes frames and a manifest split by
patient; `echoview train` writes a bundle `echoview classify` reads and prints its JSON summary;
`echoview eval --json` prints accuracy, macro_precision, macro_recall, macro_f1, weighted_f1,
per_class, confusion; `--out` writes the report files; bad input gives exit status 1 or 2 and a
message naming the problem.

usage: test_cli_search.py ECHOVIEW_BINARY SOURCE_ROOT
"""
import csv
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'common'))
from testlib import check, finish  # noqa: E402

exe, src = sys.argv[1], sys.argv[2]


def run(*args):
    return subprocess.run([exe] + list(args), capture_output=True, text=True, timeout=600)


with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "ph")
    r = run("phantom", "--out", data, "--size", "32", "--patients", "10",
            "--frames-per-patient", "2", "--seed", "3", "--threads", "2")
    check(r.returncode == 0 and "frames/s" in r.stdout, "phantom renders and reports frames/s")
    rows = list(csv.DictReader(open(os.path.join(data, "manifest.csv"))))
    check(len(rows) == 10 * 14 * 2, "manifest has 280 rows (%d)" % len(rows))
    check(set(rows[0]) >= {"path", "label", "split", "patient", "quality"}, "manifest columns")
    splits = {}
    for row in rows:
        splits.setdefault(row["patient"], set()).add(row["split"])
    check(all(len(s) == 1 for s in splits.values()), "each patient in exactly one split")
    counts = {s: sum(1 for p in splits.values() if s in p) for s in ("train", "val", "test")}
    check(counts == {"train": 6, "val": 2, "test": 2}, "60/20/20 patient split %s" % counts)
    check(os.path.exists(os.path.join(data, rows[0]["path"])), "frames exist")
    r2 = run("phantom", "--out", os.path.join(tmp, "ph2"), "--size", "32", "--patients", "10",
             "--frames-per-patient", "2", "--seed", "3", "--threads", "1")
    same = open(os.path.join(data, "manifest.csv")).read() == \
        open(os.path.join(tmp, "ph2", "manifest.csv")).read()
    same = same and open(os.path.join(data, rows[5]["path"]), "rb").read() == \
        open(os.path.join(tmp, "ph2", rows[5]["path"]), "rb").read()
    check(r2.returncode == 0 and same, "same seed on 1 thread: identical manifest and frames")

    model = os.path.join(tmp, "m")
    r = run("train", "--data", data, "--out", model, "--size", "16", "--init-channels", "4",
            "--layout", "normal,reduce", "--epochs", "2", "--batch", "28", "--lr", "3e-3",
            "--threads", "2", "--quiet")
    ok = r.returncode == 0
    summary = json.loads(r.stdout) if ok else {}
    check(ok and summary.get("epochs") == 2 and "best_val_accuracy" in summary,
          "train prints its JSON summary (%s)" % (r.stderr.strip()[-200:] if not ok else "ok"))
    for f in ("model.yaml", "weights.safetensors", "checkpoint.safetensors", "train.jsonl"):
        check(os.path.exists(os.path.join(model, f)), "train wrote " + f)
    log = [json.loads(l) for l in open(os.path.join(model, "train.jsonl"))]
    check(len(log) == 2 and {"epoch", "train_loss", "val_loss", "val_accuracy"} <= set(log[0]),
          "one JSONL line per epoch")

    r = run("eval", "--model", model, "--data", data, "--json", "--threads", "2")
    ok = r.returncode == 0
    j = json.loads(r.stdout) if ok else {}
    keys = {"accuracy", "macro_precision", "macro_recall", "macro_f1", "weighted_f1", "per_class",
            "confusion"}
    check(ok and keys <= set(j), "eval --json has %s" % sorted(keys))
    if ok:
        conf = j["confusion"]
        total = sum(map(sum, conf))
        diag = sum(conf[i][i] for i in range(len(conf)))
        check(len(conf) == 14 and total == 2 * 14 * 2 and abs(diag / total - j["accuracy"]) < 1e-6,
              "confusion 14x14 over the 56 test frames, diagonal share = accuracy")
        check(set(j["per_class"]) == set(json.load(open(os.path.join(src, "tests", "search",
                                                                      "views.json")))),
              "per_class keyed by the 14 view names")
    rep = os.path.join(tmp, "report")
    r = run("eval", "--model", model, "--data", os.path.join(data, "manifest.csv"), "--split",
            "val", "--out", rep)
    check(r.returncode == 0 and all(os.path.exists(os.path.join(rep, f)) for f in
                                    ("report.json", "report.md", "confusion.png",
                                     "misclassified.png")),
          "eval --out writes report.json, report.md, confusion.png, misclassified.png")
    check(open(os.path.join(rep, "confusion.png"), "rb").read(8) == b"\x89PNG\r\n\x1a\n",
          "confusion.png is a PNG")
    first = os.path.join(data, rows[0]["path"])
    r = run("classify", "--model", model, first)
    check(r.returncode == 0 and json.loads(r.stdout)["label"] in json.load(
        open(os.path.join(src, "tests", "search", "views.json"))), "classify reads the trained bundle")

    # calibration: refused on any split but val; on val it writes model.yaml, after which
    # eval reports the temperature and classify answers unknown below the threshold
    r = run("eval", "--model", model, "--data", data, "--split", "test", "--calibrate")
    check(r.returncode == 2 and "--calibrate fits on the validation split" in r.stderr,
          "eval --calibrate on the test split is a usage error (%s)" % r.stderr.strip())
    r = run("eval", "--model", model, "--data", data, "--split", "val", "--calibrate",
            "--reject", "0.5")
    cal = json.loads(r.stdout) if r.returncode == 0 else {}
    yaml_text = open(os.path.join(model, "model.yaml")).read()
    check(r.returncode == 0 and cal.get("temperature", 0) > 0 and
          "calibration: {temperature: " in yaml_text and
          cal.get("ece_after", 1) <= cal.get("ece_before", 0) + 0.05,
          "eval --calibrate writes calibration into model.yaml (%s)" % (r.stdout.strip() or
                                                                      r.stderr.strip()))
    r = run("eval", "--model", model, "--data", data, "--split", "val", "--json")
    j = json.loads(r.stdout) if r.returncode == 0 else {}
    c = j.get("calibration", {})
    check(abs(c.get("temperature", 0) - cal.get("temperature", -1)) < 1e-4 * cal.get(
        "temperature", 1) and abs(c.get("unknown_fraction", -1) - cal.get("unknown_fraction", 0))
          < 1e-5 and len(c.get("reliability", [])) == 15,
          "eval --json reports the fitted temperature, the same unknown share and 15 bins "
          "(%s / %s)" % ({k: c.get(k) for k in ("temperature", "unknown_fraction")},
                         {k: cal.get(k) for k in ("temperature", "unknown_fraction")}))
    outs = [json.loads(l) for l in run("classify", "--model", model,
                                       *[os.path.join(data, x["path"]) for x in rows[:20]]
                                       ).stdout.splitlines()]
    unk = [o for o in outs if o["label"] == "unknown"]
    check(all(o["label_id"] == -1 and o["confidence"] < cal["confidence_threshold"] and
              o["best_guess"] in o["probabilities"] for o in unk) and
          all(o["confidence"] >= cal["confidence_threshold"] for o in outs if o not in unk),
          "classify: unknown exactly below the threshold (%d of %d)" % (len(unk), len(outs)))

    bad = os.path.join(tmp, "bad.csv")
    with open(bad, "w") as f:
        f.write("path,label,split\n%s,A9CH,test\n" % first)
    r = run("eval", "--model", model, "--data", bad)
    check(r.returncode == 1 and "bad.csv:2: unknown label 'A9CH'" in r.stderr,
          "unknown label: exit 1 naming file and line (%s)" % r.stderr.strip())
    r = run("train", "--data", data, "--out", model, "--epochs", "900")
    check(r.returncode == 2 and "--epochs" in r.stderr, "--epochs above 800 is a usage error")
    r = run("phantom", "--out", tmp, "--views", "A6CH")
    check(r.returncode == 2 and "unknown view 'A6CH'" in r.stderr, "unknown view is a usage error")

finish()
