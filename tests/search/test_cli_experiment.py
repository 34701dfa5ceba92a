#!/usr/bin/env python3
"""test_cli_experiment.py: `echoview experiment` says why a study cannot run (a quality study
without a quality column, a views study on data lacking views it names) in its exit status,
stderr and results.md, without training; a point trained by an earlier run is reused and
still reports its epochs.

usage: test_cli_experiment.py ECHOVIEW_BINARY
"""
import csv
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'common'))
from testlib import check, finish  # noqa: E402

exe = sys.argv[1]


def run(*args):
    return subprocess.run([exe] + list(args), capture_output=True, text=True, timeout=300)


SMALL = ["--size", "16", "--networks", "1cell", "--init-channels", "4", "--batch", "8",
         "--steps-per-epoch", "1", "--threads", "2"]

with tempfile.TemporaryDirectory() as tmp:
    ph = os.path.join(tmp, "ph")
    r = run("phantom", "--out", ph, "--size", "16", "--patients", "5", "--frames-per-patient",
            "1", "--seed", "4", "--threads", "2")
    check(r.returncode == 0, "phantom (%s)" % r.stderr.strip()[-200:])
    rows = list(csv.DictReader(open(os.path.join(ph, "manifest.csv"))))
    noq = os.path.join(ph, "no-quality.csv")
    with open(noq, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "split", "patient"])
        for row in rows:
            w.writerow([row["path"], row["label"], row["split"], row["patient"]])
    out = os.path.join(tmp, "x-quality")
    r = run("experiment", "--data", noq, "--out", out, "--study", "quality", *SMALL)
    md = open(os.path.join(out, "results.md")).read() if os.path.exists(out) else ""
    why = ("the quality study needs a manifest with a quality column (grades 1..5); %s has no "
           "graded test frame" % noq)
    check(r.returncode == 1 and why in r.stderr and "Not run: " + why in md
          and not os.listdir(os.path.join(out, "runs")),
          "quality study without a quality column: exit 1, said why, nothing trained (%s)"
          % r.stderr.strip())

    two = os.path.join(ph, "two-views.csv")
    with open(two, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "split", "patient"])
        for row in rows:
            if row["label"] in ("A2CH", "A3CH"):
                w.writerow([row["path"], row["label"], row["split"], row["patient"]])
    out = os.path.join(tmp, "x-views")
    r = run("experiment", "--data", two, "--out", out, "--study", "views", *SMALL)
    md = open(os.path.join(out, "results.md")).read() if os.path.exists(out) else ""
    check(r.returncode == 1 and "the 14-view point needs frames of each of its views; %s has "
          "none of A4CH-LV, A4CH-RV," % two in r.stderr and "the 5-view point needs frames of "
          "each of its views; %s has none of A4CH-LV, PLAX-full, PSAX-LV, Subcostal" % two
          in r.stderr and md.count("Not run: ") == 3 and not os.listdir(os.path.join(out, "runs")),
          "views study on 2 views: exit 1, each point says which views it lacks, nothing trained "
          "(%s)" % r.stderr.strip())

    out = os.path.join(tmp, "x-fraction")
    args = ["experiment", "--data", ph, "--out", out, "--study", "fraction", "--fractions", "1",
            "--epochs", "2", "--patience", "0", *SMALL]
    r = run(*args)
    first = json.load(open(os.path.join(out, "results.json"))) if r.returncode == 0 else [{}]
    r = run(*args)
    again = json.load(open(os.path.join(out, "results.json"))) if r.returncode == 0 else [{}]
    check(first[0].get("epochs") == 2 and "(trained before)" in r.stderr and
          again[0].get("epochs") == 2 and again[0].get("trained_before") is True and
          again[0].get("accuracy") == first[0].get("accuracy"),
          "a reused point reports the epochs it trained (%s then %s; %s)"
          % (first, again, r.stderr.strip()[-200:]))
finish()
