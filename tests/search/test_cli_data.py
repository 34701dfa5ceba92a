#!/usr/bin/env python3
"""Bringing one's own data to `echoview train` and `echoview eval`: the DICOM cine loops that
`echoview phantom --format dicom` writes train as they are (folder with its manifest, and the
bare class folders with patients from the PatientID tags); image folders without patient IDs
warn that frames are split one by one, and --patient-regex silences it; the split recorded in
the bundle and eval keeping to it; predictions.csv and clip accuracy; --resume, --force and a
CSV byte-order mark; AVI/MKV video clips sampled with --video-fps; bad options and data give
exit status 1 or 2 and the message naming the problem.

usage: test_cli_data.py ECHOVIEW_BINARY
"""
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'common'))
from testlib import check, finish  # noqa: E402

exe = sys.argv[1]


def run(*args):
    return subprocess.run([exe] + list(args), capture_output=True, text=True, timeout=600)


TRAIN = ["--size", "16", "--init-channels", "4", "--layout", "normal,reduce", "--epochs", "1",
         "--batch", "28", "--threads", "2", "--steps-per-epoch", "2"]
NO_ID = "have no patient ID"

with tempfile.TemporaryDirectory() as tmp:
    # DICOM loops, exactly as the phantom writes them
    loops = os.path.join(tmp, "loops")
    r = run("phantom", "--format", "dicom", "--out", loops, "--size", "16", "--patients", "5",
            "--frames-per-patient", "4", "--seed", "5", "--threads", "2")
    if r.returncode != 0 and "no DICOM support" in r.stderr:
        print("skip DICOM: this build has no DCMTK")
    else:
        check(r.returncode == 0, "phantom --format dicom writes loops (%s)" % r.stderr.strip())
        rows = list(csv.DictReader(open(os.path.join(loops, "manifest.csv"))))
        check(len(rows) == 5 * 14 and rows[0]["path"].endswith(".dcm"),
              "one manifest row per loop (%d)" % len(rows))
        m = os.path.join(tmp, "m-dicom")
        r = run("train", "--data", loops, "--out", m, *TRAIN)
        check(r.returncode == 0 and "bad magic" not in r.stderr and NO_ID not in r.stderr,
              "train on the phantom's DICOM folder + manifest (%s)" % r.stderr.strip()[-300:])
        r = run("eval", "--model", m, "--data", loops, "--json", "--threads", "2")
        ok = r.returncode == 0
        j = json.loads(r.stdout) if ok else {}
        total = sum(map(sum, j.get("confusion", [[0]])))
        test_loops = sum(1 for row in rows if row["split"] == "test")
        check(ok and total == 4 * test_loops,
              "eval scores every frame of the %d test loops (%d frames; %s)"
              % (test_loops, total, r.stderr.strip()[-200:]))
        # per-frame predictions and clip accuracy
        rep = os.path.join(tmp, "rep")
        r = run("eval", "--model", m, "--data", loops, "--json", "--threads", "2", "--out", rep)
        ok = r.returncode == 0
        j = json.loads(r.stdout) if ok else {}
        pred = list(csv.reader(open(os.path.join(rep, "predictions.csv")))) if ok else [[]]
        head = pred[0]
        classes = j.get("classes", [])
        check(head == ["file", "frame", "patient", "clip", "split", "truth", "prediction",
                       "confidence"] + ["p_" + c for c in classes],
              "predictions.csv header: file, frame, patient, clip, split, truth, prediction, "
              "confidence, p_CLASS (%s)" % head[:9])
        body = pred[1:]
        probs_ok = all(abs(sum(map(float, row[8:])) - 1) < 1e-4 and
                       abs(max(map(float, row[8:])) - float(row[7])) < 1e-6 and
                       classes[max(range(len(classes)), key=lambda c: float(row[8 + c]))] == row[6]
                       for row in body)
        check(len(body) == 4 * test_loops and probs_ok
              and {row[1] for row in body} == {"0", "1", "2", "3"}
              and all(row[3].startswith("1.2.") and row[4] == "test" for row in body),
              "one row per test frame (%d), frames 0..3, clip = SOP Instance UID, probabilities "
              "sum to 1 and their argmax is the prediction" % len(body))
        clips = {}
        for row in body:
            acc = clips.setdefault(row[3], [row[5], [0.0] * len(classes)])
            acc[1] = [a + float(x) for a, x in zip(acc[1], row[8:])]
        right = sum(1 for truth, s in clips.values()
                    if classes[max(range(len(classes)), key=lambda c: s[c])] == truth)
        check(j.get("clips") == test_loops and
              abs(j.get("clip_accuracy", -1) - right / test_loops) < 1e-6,
              "clip accuracy = share of clips whose mean probability picks their label "
              "(%s of %s; recomputed %d)" % (j.get("clip_accuracy"), j.get("clips"), right))
        blocked = os.path.join(tmp, "rep-blocked")
        os.makedirs(os.path.join(blocked, "predictions.csv"))
        r = run("eval", "--model", m, "--data", loops, "--out", blocked)
        check(r.returncode == 1 and "rep-blocked/predictions.csv: Is a directory" in r.stderr,
              "an unwritable predictions.csv: exit 1 naming it (%s)" % r.stderr.strip())
        # the bare class folders: patients from the tags, so no warning
        bare = os.path.join(tmp, "bare")
        shutil.copytree(loops, bare)
        os.remove(os.path.join(bare, "manifest.csv"))
        r = run("train", "--data", bare, "--out", os.path.join(tmp, "m-bare"), *TRAIN,
                "--frames-per-clip", "2")
        check(r.returncode == 0 and NO_ID not in r.stderr,
              "train on bare DICOM class folders: patients from PatientID, no warning (%s)"
              % r.stderr.strip()[-300:])

    # PNG class folders without patient IDs
    ph = os.path.join(tmp, "ph")
    r = run("phantom", "--out", ph, "--size", "16", "--patients", "5", "--frames-per-patient",
            "2", "--seed", "5", "--threads", "2")
    os.remove(os.path.join(ph, "manifest.csv"))
    r = run("train", "--data", ph, "--out", os.path.join(tmp, "m-png"), *TRAIN)
    check(r.returncode == 0 and "140 of 140 frames " + NO_ID in r.stderr
          and "give --patient-regex" in r.stderr,
          "image folder without patient IDs: train warns frames are split one by one (%s)"
          % r.stderr.strip()[-300:])
    r = run("train", "--data", ph, "--out", os.path.join(tmp, "m-png2"), *TRAIN,
            "--patient-regex", "/(p[0-9]+)_")
    check(r.returncode == 0 and NO_ID not in r.stderr,
          "--patient-regex names the patients: no warning (%s)" % r.stderr.strip()[-300:])
    r = run("train", "--data", ph, "--out", os.path.join(tmp, "m-png3"), *TRAIN,
            "--patient-regex", "^q")
    check(r.returncode == 1 and "--patient-regex '^q' does not match 'A2CH/" in r.stderr,
          "a --patient-regex that misses a file: exit 1 naming it (%s)" % r.stderr.strip())
    r = run("train", "--data", ph, "--out", os.path.join(tmp, "m-png4"), *TRAIN,
            "--frames-per-clip", "2", "--clip-frame-step", "2")
    check(r.returncode == 2 and "give --frames-per-clip or --clip-frame-step, not both" in r.stderr,
          "both clip frame selections: usage error (%s)" % r.stderr.strip())

    # the split goes into the bundle and eval keeps to it
    m = os.path.join(tmp, "m-png2")
    text = open(os.path.join(m, "model.yaml")).read()
    check(text.count("\ntraining:\n") == 1 and "\n  split:\n    source: drawn\n    seed: \"1\"\n"
          "    manifest_hash: \"fnv1a64:" in text.split("\ntraining:\n")[1],
          "model.yaml records the split in its training section: drawn, seed, manifest hash")
    recorded = {}
    for s in ("train", "val", "test"):
        line = [l for l in text.splitlines() if l.strip().startswith(s + ":")][-1]
        recorded[s] = [p.strip().strip('"') for p in line.split("[", 1)[1].rstrip("]").split(",")
                       if p.strip()]
    check(sorted(sum(recorded.values(), [])) == ["p%04d" % i for i in range(5)]
          and len(recorded["train"]) == 3,
          "its patients: 3 train, 1 val, 1 test of p0000..p0004 (%s)" % recorded)
    r = run("eval", "--model", m, "--data", ph, "--json", "--threads", "2", "--seed", "99",
            "--patient-regex", "/(p[0-9]+)_")
    ok = r.returncode == 0
    j = json.loads(r.stdout) if ok else {}
    total = sum(map(sum, j.get("confusion", [[0]])))
    check(ok and total == 28 * len(recorded["test"]),
          "eval with another --seed scores the recorded test patient's 28 frames (%d; %s)"
          % (total, r.stderr.strip()[-200:]))
    r = run("eval", "--model", m, "--data", ph)
    check(r.returncode == 1 and "lists the files the model was trained on (same manifest hash) but "
          "none of its patients is in the model's split" in r.stderr,
          "eval on the training folder without the training --patient-regex: refused (%s)"
          % r.stderr.strip())
    trained = recorded["train"][0]
    mixed = os.path.join(tmp, "mixed.csv")
    with open(mixed, "w") as f:
        f.write("path,label,patient\n")
        f.write("ph/A2CH/%s_f00.png,A2CH,%s\n" % (trained, trained))
        f.write("ph/A3CH/%s_f00.png,A3CH,new-1\n" % trained)
    r = run("eval", "--model", m, "--data", mixed)
    check(r.returncode == 1 and ("mixed.csv has no split of its own and patient '%s' was in the "
                                 "model's train split" % trained) in r.stderr,
          "unsplit data mixing a training patient with new ones: refused naming it (%s)"
          % r.stderr.strip())
    with open(mixed, "w") as f:
        f.write("path,label,split,patient\n")
        f.write("ph/A2CH/%s_f00.png,A2CH,test,%s\n" % (trained, trained))
    r = run("eval", "--model", m, "--data", mixed)
    check(r.returncode == 1 and ("mixed.csv: patient '%s' is in split 'test' here, but the model "
                                 "was trained on that patient" % trained) in r.stderr,
          "a test split holding a training patient: refused naming it (%s)" % r.stderr.strip())
    with open(mixed, "w") as f:
        f.write("path,label,patient\n")
        for v in ("A2CH", "A3CH"):
            f.write("ph/%s/%s_f00.png,%s,new-1\n" % (v, trained, v))
    r = run("eval", "--model", m, "--data", mixed, "--json")
    ok = r.returncode == 0
    total = sum(map(sum, json.loads(r.stdout)["confusion"])) if ok else 0
    check(ok and total == 2, "unsplit data of unseen patients: all of it is test data (%d; %s)"
          % (total, r.stderr.strip()))
    # a damaged record is an error naming the file, line and key
    for old, new, want in (("source: drawn", "source: maybe", "training: split needs source "
                            "(drawn or given), seed, manifest_hash (fnv1a64:HEX) and patients"),
                           ('seed: "1"', 'seed: "x1"', "training: split: seed 'x1' is not a "
                            "number"),
                           ("    patients:", "    colour: red\n    patients:",
                            "unknown key 'colour' in training: split")):
        bad = os.path.join(tmp, "m-bad")
        shutil.rmtree(bad, ignore_errors=True)
        shutil.copytree(m, bad)
        with open(os.path.join(bad, "model.yaml"), "w") as f:
            f.write(text.replace(old, new))
        r = run("eval", "--model", bad, "--data", ph, "--patient-regex", "/(p[0-9]+)_")
        check(r.returncode == 1 and "model.yaml:" in r.stderr and want in r.stderr,
              "model.yaml with %s: refused (%s)" % (new.strip(), r.stderr.strip()))
    leak = os.path.join(tmp, "leak.csv")
    with open(leak, "w") as f:
        f.write("path,label,split,patient\nph/A2CH/p0000_f00.png,A2CH,train,P1\n"
                "ph/A2CH/p0000_f01.png,A2CH,val,P1\n")
    r = run("train", "--data", leak, "--out", os.path.join(tmp, "m-leak"), *TRAIN)
    check(r.returncode == 1 and "leak.csv:3: patient 'P1' is in split 'val' here and in split "
          "'train' on line 2" in r.stderr, "train refuses a patient in two splits (%s)"
          % r.stderr.strip())

    # a manifest saved by Excel starts with a UTF-8 byte-order mark
    bom = os.path.join(tmp, "bom.csv")
    with open(bom, "w", encoding="utf-8-sig") as f:
        f.write("path,label,patient\nph/A2CH/p0000_f00.png,A2CH,new-2\n"
                "ph/A3CH/p0000_f00.png,A3CH,new-2\n")
    r = run("eval", "--model", m, "--data", bom, "--json")
    check(r.returncode == 0 and sum(map(sum, json.loads(r.stdout)["confusion"])) == 2,
          "a CSV with a UTF-8 byte-order mark is read (%s)" % r.stderr.strip())
    # train does not overwrite a model without --force
    r = run("train", "--data", ph, "--out", m, *TRAIN)
    check(r.returncode == 1 and ("%s already holds a model (model.yaml): give --force to "
                                 "overwrite it, or --resume to continue its run" % m) in r.stderr,
          "train into a model folder: refused without --force (%s)" % r.stderr.strip())
    r = run("train", "--data", ph, "--out", m, *TRAIN, "--force", "--patient-regex",
            "/(p[0-9]+)_")
    check(r.returncode == 0, "with --force it trains (%s)" % r.stderr.strip()[-200:])
    # --resume refuses another learning rate, seed or schedule, naming the option
    res = os.path.join(tmp, "m-resume")
    args = TRAIN[:TRAIN.index("--epochs")] + ["--epochs", "2", "--batch", "28", "--threads", "2",
                                             "--patient-regex", "/(p[0-9]+)_"]
    r = run("train", "--data", ph, "--out", res, *args, "--steps-per-epoch", "1",
            "--stop-after", "1")
    check(r.returncode == 0, "an interrupted run (%s)" % r.stderr.strip()[-200:])
    for extra, want in ((["--lr", "0.01"], "--lr is 0.01, but the checkpoint's run used 0.0001"),
                        (["--seed", "4"], "--seed is 4, but the checkpoint's run used 1"),
                        (["--cosine"], "--cosine is on, but the checkpoint's run used off"),
                        (["--steps-per-epoch", "2"],
                         "--steps-per-epoch is 2, but the checkpoint's run used 1")):
        steps = [] if "--steps-per-epoch" in extra else ["--steps-per-epoch", "1"]
        r = run("train", "--data", ph, "--out", res, *args, *steps, "--resume", *extra)
        check(r.returncode == 1 and want in r.stderr,
              "--resume with %s: refused naming it (%s)" % (" ".join(extra), r.stderr.strip()))
    cos = os.path.join(tmp, "m-cosine")
    r = run("train", "--data", ph, "--out", cos, *args, "--steps-per-epoch", "1", "--cosine",
            "--stop-after", "1")
    r = run("train", "--data", ph, "--out", cos, *TRAIN[:TRAIN.index("--epochs")], "--epochs", "3", "--batch", "28",
            "--threads", "2", "--patient-regex", "/(p[0-9]+)_", "--steps-per-epoch", "1",
            "--cosine", "--resume")
    check(r.returncode == 1 and "--epochs is 3, but the checkpoint's run used 2" in r.stderr,
          "--resume of a cosine run with other --epochs: refused naming it (%s)" % r.stderr.strip())
    r = run("train", "--data", ph, "--out", res, *args, "--steps-per-epoch", "1", "--resume")
    check(r.returncode == 0 and json.loads(r.stdout)["epochs"] == 2,
          "--resume with the run's own options continues it (%s)" % r.stderr.strip()[-200:])

    # video files: MJPEG in AVI and MKV, 30 frames at 30 frames/s, written by GStreamer
    gst = shutil.which("gst-launch-1.0")
    made = []
    for name, mux in (("clip.avi", "avimux"), ("clip.mkv", "matroskamux")):
        out = os.path.join(tmp, name)
        if gst and subprocess.run([gst, "-q", "videotestsrc", "num-buffers=30", "!",
                                   "video/x-raw,width=64,height=48,framerate=30/1", "!",
                                   "jpegenc", "!", mux, "!", "filesink", "location=" + out],
                                  capture_output=True, timeout=60).returncode == 0:
            made.append(name)
    if len(made) < 2:
        print("skip video: no gst-launch-1.0 with jpegenc, avimux and matroskamux")
    else:
        with open(os.path.join(tmp, "bad.mp4"), "wb") as f:
            f.write(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
        vids = os.path.join(tmp, "videos.csv")
        with open(vids, "w") as f:
            f.write("path,label,patient\nclip.avi,A2CH,v-1\nclip.mkv,A3CH,v-2\n")
        r = run("eval", "--model", m, "--data", vids, "--json", "--out", os.path.join(tmp, "rv"))
        if "no GStreamer" in r.stderr:
            print("skip video: this build has no GStreamer")
        else:
            ok = r.returncode == 0
            j = json.loads(r.stdout) if ok else {}
            rows = list(csv.DictReader(open(os.path.join(tmp, "rv", "predictions.csv")))) \
                if ok else []
            check(ok and j["frames"] == 60 and j["clips"] == 2 and
                  sorted({int(x["frame"]) for x in rows}) == list(range(30)),
                  "an AVI and an MKV clip: every frame of each (60 frames, 2 clips; %s)"
                  % r.stderr.strip()[-200:])
            r = run("eval", "--model", m, "--data", vids, "--json", "--video-fps", "10",
                    "--out", os.path.join(tmp, "rv"))
            ok = r.returncode == 0
            rows = list(csv.DictReader(open(os.path.join(tmp, "rv", "predictions.csv")))) \
                if ok else []
            check(ok and json.loads(r.stdout)["frames"] == 20 and
                  sorted({int(x["frame"]) for x in rows}) == list(range(10)) and
                  {x["clip"] for x in rows} == {os.path.join(tmp, "clip.avi"),
                                                 os.path.join(tmp, "clip.mkv")},
                  "--video-fps 10: 10 frames of each 1 s clip, clip IDs their paths (%s)"
                  % r.stderr.strip()[-200:])
            with open(vids, "a") as f:
                f.write("bad.mp4,A2CH,v-3\n")
            r = run("eval", "--model", m, "--data", vids)
            check(r.returncode == 0 and "skipping %s: %s: cannot decode: " % (
                      os.path.join(tmp, "bad.mp4"), os.path.join(tmp, "bad.mp4"))
                  in r.stderr and "1 of 61 frames could not be read" in r.stderr,
                  "a corrupt MP4 is a bad frame named in a warning (%s)" % r.stderr.strip())

finish()
