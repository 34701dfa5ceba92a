#!/usr/bin/env python3
"""A researcher's own data, end to end, at toy scale: a hospital-like folder of DICOM cine loops
(patient IDs in the tags, no conversion step) with a manifest of the site's own 5 classes
(spaces, non-ASCII and 'other' among them) -> train -> eval -> classify -> fine-tune onto the
14 views with frozen layers -> AdaBN on the unlabelled loops -> ONNX export, asserting the
recorded split and the provenance in model.yaml's one `training:` section (and `inspect`
showing it); bad class lists, fine-tuning options and resumes are refused by name.

A second part builds the whole hospital from files only: the DICOM loops, a folder of MP4
(H.264) clips, a JPEG folder with one subfolder per class (the class list from the folder
names) and a manifest mixing all three; trains on the mix, evaluates it, fine-tunes
models/echo-2cell-96 onto its 5 classes with a lower backbone rate, classifies a JPEG, runs the
result in the GStreamer element on an MP4 clip, adapts and exports it.

usage: test_cli_research.py ECHOVIEW_BINARY [echo-2cell-96 bundle]
"""
import csv
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'common'))
from testlib import check, finish  # noqa: E402

exe = sys.argv[1]
shipped = sys.argv[2] if len(sys.argv) > 2 else None


def run(*args):
    return subprocess.run([exe] + list(args), capture_output=True, text=True, timeout=600)


def tensors(path):
    """safetensors file -> {name: raw bytes}"""
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    head = json.loads(b[8:8 + n])
    head.pop("__metadata__", None)
    return {k: b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]
            for k, v in head.items()}


def fnv1a64(path):
    h = 1469598103934665603
    for byte in open(path, "rb").read():
        h = ((h ^ byte) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return "fnv1a64:%016x" % h


def training_section(model):
    text = open(os.path.join(model, "model.yaml"), encoding="utf-8").read()
    check(text.count("\ntraining:\n") == 1, "%s: one training section" % os.path.basename(model))
    return text[text.index("\ntraining:\n"):]


SMALL = ["--epochs", "1", "--batch", "10", "--threads", "2", "--steps-per-epoch", "2"]
TRAIN = ["--size", "16", "--init-channels", "4", "--layout", "normal,reduce"] + SMALL
OWN = ["Apical 2 chambre", "Vue 4 cavités", "PLAX", "PSAX", "other"]
MAP = {"A2CH": 0, "A3CH": 0, "A4CH-LV": 1, "A4CH-RV": 1, "A5CH": 1, "PLAX-full": 2,
       "PLAX-valves": 2, "PLAX-TV": 2, "PSAX-AV": 3, "PSAX-LV": 3}

with tempfile.TemporaryDirectory() as tmp:
    site = os.path.join(tmp, "hospital")
    r = run("phantom", "--format", "dicom", "--out", site, "--size", "16", "--patients", "5",
            "--frames-per-patient", "3", "--seed", "11", "--threads", "2")
    if r.returncode != 0 and "no DICOM support" in r.stderr:
        print("skip: this build has no DCMTK")
        sys.exit(77)
    check(r.returncode == 0, "phantom writes DICOM loops (%s)" % r.stderr.strip()[-200:])
    rows = list(csv.DictReader(open(os.path.join(site, "manifest.csv"))))
    # the site's own labels; no split or patient columns: patients come from the DICOM tags
    own = os.path.join(site, "own.csv")
    with open(own, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        for row in rows:
            w.writerow([row["path"], OWN[MAP.get(row["label"], 4)]])
    m1 = os.path.join(tmp, "m-own")

    # bad class lists: exit 2, naming the class
    for classes, msg in [("A,a", "'A' and 'a' name the same class"),
                         ("PLAX,Apical\x01", "class 2 'Apical\x01' has a control character"),
                         ("x", "1 class; a classifier needs 2 or more"),
                         ('a,b"c', "has a comma or a double quote"),
                         ("a,,b", "class 2 '' is empty")]:
        r = run("train", "--data", own, "--out", m1, *TRAIN, "--classes", classes)
        check(r.returncode == 2 and msg in r.stderr,
              "--classes %r refused: %s (%s)" % (classes, msg, r.stderr.strip()))
    # without --classes the manifest's labels are the classes, in byte order
    m0 = os.path.join(tmp, "m-labels")
    r = run("train", "--data", own, "--out", m0, *TRAIN)
    by_byte = sorted(OWN, key=lambda x: x.encode())
    check(r.returncode == 0 and "classes from %s, in byte order (--classes for another): %s\n"
          % (own, ", ".join(by_byte)) in r.stderr and 'classes: [%s]' % ", ".join(
              '"%s"' % x for x in by_byte) in open(os.path.join(m0, "model.yaml"),
                                                   encoding="utf-8").read(),
          "own labels without --classes: the class list is the labels in byte order, said so "
          "and in model.yaml (%s)" % r.stderr.strip()[-300:])

    r = run("train", "--data", own, "--out", m1, *TRAIN, "--classes", ", ".join(OWN))
    check(r.returncode == 0, "train on the site's own 5 classes (%s)" % r.stderr.strip()[-300:])
    text = open(os.path.join(m1, "model.yaml"), encoding="utf-8").read()
    check('classes: ["Apical 2 chambre", "Vue 4 cavités", "PLAX", "PSAX", "other"]' in text,
          "model.yaml lists the 5 classes as given")
    t = training_section(m1)
    frames = [int(x) for x in t.split("frames: {train: ")[1].split("}")[0]
              .replace("val: ", "").replace("test: ", "").split(", ")]
    check("  command: \"echoview train --data " + own in t and "--classes 'Apical 2 chambre, "
          in t and "  data: \"%s\"" % own in t and "  source_commit: \"" in t
          and "  date: \"20" in t and sum(frames) == 3 * len(rows) and min(frames) > 0
          and "  epochs: 1\n  roi: data\n" in t
          and "    source: drawn\n" in t,
          "training records command line, data, commit, date, epochs, ROI mode, frames per split "
          "%s (of %d) and the drawn split" % (frames, 3 * len(rows)))

    r = run("eval", "--model", m1, "--data", own, "--json", "--threads", "2")
    j = json.loads(r.stdout) if r.returncode == 0 else {}
    check(j.get("classes") == OWN and sum(map(sum, j.get("confusion", [[0]]))) == frames[2],
          "eval reports the 5 classes and scores the %d recorded test frames (%s)"
          % (frames[2], r.stderr.strip()[-200:]))
    r = run("eval", "--model", m1, "--data", own, "--split", "all", "--json", "--threads", "2",
            "--seed", "5")
    j = json.loads(r.stdout) if r.returncode == 0 else {}
    b = j.get("bootstrap", {})
    lo, hi = b.get("accuracy_95", [2, -1])
    flo, fhi = b.get("macro_f1_95", [2, -1])
    check(b.get("method") == "patients" and b.get("patients") == 5 and b.get("resamples") == 1000
          and b.get("seed") == 5 and lo <= j["accuracy"] <= hi and flo <= fhi,
          "eval: 95%% intervals by bootstrapping the 5 patients: accuracy %.3f in [%.3f, %.3f], "
          "macro F1 [%.3f, %.3f] (%s)" % (j.get("accuracy", -1), lo, hi, flo, fhi,
                                          r.stderr.strip()[-200:]))
    r = run("eval", "--model", m1, "--data", own, "--split", "all", "--threads", "2",
            "--seed", "5")
    check(r.returncode == 0 and "95%% intervals (bootstrap over 5 patients, 1000 resamples, seed "
          "5): accuracy %.2f-%.2f%%" % (100 * lo, 100 * hi) in r.stdout,
          "eval prints the intervals (%s)" % r.stdout.strip()[:300])
    png = os.path.join(tmp, "frame.png")
    ph = os.path.join(tmp, "ph")
    run("phantom", "--out", ph, "--size", "16", "--patients", "1", "--frames-per-patient", "1",
        "--seed", "3", "--threads", "2")
    png = os.path.join(ph, "A2CH", sorted(os.listdir(os.path.join(ph, "A2CH")))[0])
    r = run("classify", "--model", m1, png)
    c = json.loads(r.stdout) if r.returncode == 0 else {}
    check(c.get("label") in OWN and sorted(c.get("probabilities", {})) == sorted(OWN),
          "classify answers with the site's labels (%s)" % c.get("label"))

    # fine-tuning onto the 14 views: a new head, frozen stem and first cell
    m2 = os.path.join(tmp, "m-tuned")
    tune = ["--data", site, "--out", m2, "--init-from", m1, "--classes", "views", "--freeze",
            "stem,cells:0"] + SMALL
    r = run("train", *tune, "--init-channels", "8")
    check(r.returncode == 2 and "--init-channels 8, but --init-from " + m1 + " has 4" in r.stderr,
          "--init-from with another --init-channels: refused by name (%s)" % r.stderr.strip())
    r = run("train", "--data", site, "--out", m2, "--freeze", "stem", *TRAIN)
    check(r.returncode == 2 and "--freeze needs --init-from" in r.stderr,
          "--freeze without --init-from: refused (%s)" % r.stderr.strip())
    # --arch: a baseline takes no DARTS options; unknown names and VGG (no training kernels yet)
    # are refused by name
    for extra, want in ((["--arch", "vgg19"], "--arch 'vgg19' is not darts, resnet18"),
                        (["--arch", "vgg16"], "--arch vgg16 cannot be trained yet"),
                        (["--arch", "resnet18", "--genotype", "DARTS_V2"],
                         "--genotype is not for --arch resnet18"),
                        (["--arch", "densenet201", "--init-from", m1],
                         "is not for --arch densenet201")):
        r = run("train", "--data", site, "--out", m2, *extra, *TRAIN)
        check(r.returncode == 2 and want in r.stderr,
              "train %s: refused (%s)" % (" ".join(extra), r.stderr.strip()))
    r = run("train", *tune[:8], "--freeze", "cells:7", *SMALL)
    check(r.returncode == 1 and "'cells:7': the network has cells 0..1" in r.stderr,
          "--freeze of a cell the network lacks: named (%s)" % r.stderr.strip())
    r = run("train", *tune[:8], "--freeze", "stem,cells:0-1,head", *SMALL)
    check(r.returncode == 1 and "leaves nothing to train" in r.stderr,
          "--freeze of everything: refused (%s)" % r.stderr.strip())
    r = run("train", *tune, "--stop-after", "1", "--epochs", "2")
    check(r.returncode == 0 and "re-initialised: classifier.weight, classifier.bias" in r.stderr,
          "fine-tune: the network comes from the bundle, the head is new and said so (%s)"
          % r.stderr.strip()[-300:])
    before, after = tensors(os.path.join(m1, "weights.safetensors")), \
        tensors(os.path.join(m2, "weights.safetensors"))
    frozen = [k for k in before if (k.startswith("stem.") or k.startswith("cells.0."))
              and "running_" not in k]
    thawed = [k for k in before if k.startswith("cells.1.") and "running_" not in k]
    check(frozen and all(before[k] == after[k] for k in frozen),
          "%d frozen tensors byte-identical after training" % len(frozen))
    check(thawed and any(before[k] != after[k] for k in thawed),
          "unfrozen tensors changed (%d of %d)"
          % (sum(before[k] != after[k] for k in thawed), len(thawed)))
    t2 = training_section(m2)
    check("  init_from:\n    model: \"%s\"\n    weights_hash: \"%s\"\n"
          "    reinitialised: \"classifier.weight, classifier.bias\"\n"
          % (m1, fnv1a64(os.path.join(m1, "weights.safetensors"))) in t2
          and "  freeze: \"stem,cells:0\"\n" in t2,
          "training records the bundle fine-tuned from (its weights' hash), the new head and "
          "the frozen layers")
    r = run("train", *tune[:8], "--freeze", "stem", *SMALL, "--epochs", "2", "--resume")
    check(r.returncode == 1 and "--freeze is stem, but the checkpoint's run used stem,cells:0"
          in r.stderr, "--resume with other frozen layers: refused naming --freeze (%s)"
          % r.stderr.strip()[-300:])
    r = run("train", *tune[:8], *SMALL, "--epochs", "2", "--resume")
    check(r.returncode == 1 and "the checkpoint's run used --freeze stem,cells:0; resume with it"
          in r.stderr, "--resume without the run's --freeze: refused naming it (%s)"
          % r.stderr.strip()[-300:])
    r = run("train", *tune, "--epochs", "2", "--resume")
    check(r.returncode == 0 and "resuming " + m2 + " after epoch 1" in r.stderr,
          "--resume with the same --init-from and --freeze continues (%s)"
          % r.stderr.strip()[-200:])

    # a lower rate for the bundle's tensors: --lr-backbone (the head learns at --lr)
    def floats(b):
        return struct.unpack("<%df" % (len(b) // 4), b)

    def max_change(a, b, names):
        return max(max(abs(x - y) for x, y in zip(floats(a[k]), floats(b[k]))) for k in names)

    start = tensors(os.path.join(m1, "weights.safetensors"))
    taken = [k for k in start if not k.startswith("classifier.") and "running_" not in k
             and "num_batches" not in k]
    slow, still = os.path.join(tmp, "m-slow"), os.path.join(tmp, "m-still")
    base = ["--data", site, "--init-from", m1, "--classes", "views"] + SMALL
    r = run("train", *base, "--out", slow, "--lr", "1e-2", "--lr-backbone", "1e-8")
    r2 = run("train", *base, "--out", still, "--lr", "1e-8", "--lr-backbone", "1e-8")
    check(r.returncode == 0 and r2.returncode == 0, "fine-tune with --lr-backbone (%s %s)"
          % (r.stderr.strip()[-200:], r2.stderr.strip()[-200:]))
    a, b = tensors(os.path.join(slow, "weights.safetensors")), \
        tensors(os.path.join(still, "weights.safetensors"))
    moved = max_change(before, after, thawed)
    kept = max_change(start, a, taken)
    head = max_change(a, b, ["classifier.weight"])
    check(kept < 1e-6 and moved > 1e-5 and head > 1e-4,
          "--lr 1e-2 --lr-backbone 1e-8: the bundle's %d tensors move at most %.2g (at --lr "
          "1e-4 without it: %.2g), the new head moves %.2g more than at --lr 1e-8"
          % (len(taken), kept, moved, head))
    t4 = training_section(slow)
    check("  lr: 0.01\n" in t4 and "  lr_backbone: 1e-08\n" in t4,
          "model.yaml records lr and lr_backbone")
    r = run("train", *base, "--out", slow, "--lr", "1e-2", "--epochs", "2", "--resume")
    check(r.returncode == 1 and "the checkpoint's run used --lr-backbone 1e-08" in r.stderr,
          "--resume without the run's --lr-backbone: refused naming it (%s)"
          % r.stderr.strip()[-200:])
    r = run("train", "--data", site, "--out", slow, "--lr-backbone", "1e-5", "--force", *TRAIN)
    check(r.returncode == 2 and "--lr-backbone needs --init-from" in r.stderr,
          "--lr-backbone without --init-from: refused (%s)" % r.stderr.strip())
    r = run("train", *base, "--out", slow, "--freeze-epochs", "1", "--force")
    check(r.returncode == 2 and "--freeze-epochs needs --freeze" in r.stderr,
          "--freeze-epochs without --freeze: refused (%s)" % r.stderr.strip())
    # frozen for one epoch, then thawed
    thaw = os.path.join(tmp, "m-thaw")
    stem = [k for k in start if k.startswith("stem.") and "running_" not in k]
    tw = base + ["--out", thaw, "--freeze", "stem", "--freeze-epochs", "1", "--epochs", "2",
                 "--lr-backbone", "1e-5"]
    r = run("train", *tw, "--stop-after", "1")
    c1 = {k[6:]: v for k, v in tensors(os.path.join(thaw, "checkpoint.safetensors")).items()
          if k.startswith("param.")}
    r2 = run("train", *tw, "--resume")
    c2 = {k[6:]: v for k, v in tensors(os.path.join(thaw, "checkpoint.safetensors")).items()
          if k.startswith("param.")}
    check(r.returncode == 0 and r2.returncode == 0 and all(c1[k] == start[k] for k in stem)
          and any(c2[k] != start[k] for k in stem) and "  freeze_epochs: 1\n" in
          training_section(thaw),
          "--freeze stem --freeze-epochs 1: the stem is byte-identical after epoch 1 and trains "
          "in epoch 2 (%s)" % (r.stderr + r2.stderr).strip()[-200:])

    # SIGINT: the step under way finishes, the checkpoint holds the run so far (mid-epoch) and
    # --resume continues it to the same bytes as a run that was never interrupted
    sig = ["--data", own, "--classes", ", ".join(OWN), "--size", "16", "--init-channels", "4",
           "--layout", "normal,reduce", "--batch", "10", "--threads", "2", "--epochs", "2",
           "--steps-per-epoch", "60", "--drop-path", "0.3"]
    whole, cut = os.path.join(tmp, "m-whole"), os.path.join(tmp, "m-cut")
    r = run("train", *sig, "--out", whole)
    check(r.returncode == 0 and "ETA 0:" in r.stderr and " for 1 more\n" in r.stderr,
          "each epoch's line gives the run's ETA (%s)" % r.stderr.strip()[-200:])
    p = subprocess.Popen([exe, "train", *sig, "--out", cut], stderr=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    head = ""
    while not head.startswith("training "):  # the loop is about to run: interrupt it
        head = p.stderr.readline()
        if not head:
            break
    p.send_signal(signal.SIGINT)
    out, rest = p.communicate(timeout=600)
    stopped = re.search(r"interrupted after step (\d+) of 60 in epoch (\d) of 2; the checkpoint "
                        r"(\S+) holds the run up to there", rest)
    check(p.returncode == 130 and stopped and stopped.group(3) == cut + "/checkpoint.safetensors"
          and "interrupt: finishing the current step" in rest and out == "" and
          "  continue with: echoview train --data " + own in rest and rest.rstrip()
          .endswith("--out " + cut + " --resume"),
          "SIGINT: exit 130 after finishing a step (%s), naming the checkpoint and the command "
          "that continues (%s)" % (stopped and stopped.group(0), rest.strip()[-300:]))
    r = run("train", *sig, "--out", cut, "--resume")
    mid = stopped and int(stopped.group(1)) < 60
    check(r.returncode == 0 and (not mid or "continuing epoch %s at step %d of 60"
                                 % (stopped.group(2), int(stopped.group(1)) + 1) in r.stderr),
          "--resume continues the interrupted epoch at the next step (%s)"
          % r.stderr.strip()[-300:])
    for name in ["weights.safetensors", "checkpoint.safetensors"]:
        check(open(os.path.join(whole, name), "rb").read() ==
              open(os.path.join(cut, name), "rb").read(),
              "interrupted and resumed: %s byte-identical to the uninterrupted run's" % name)

    # AdaBN on the site's unlabelled loops (the folder tree as it is; labels ignored)
    m3 = os.path.join(tmp, "m-adapted")
    r = run("adapt", "--model", m2, "--data", site, "--out", m3, "--batch", "16",
            "--threads", "2")
    a = json.loads(r.stdout) if r.returncode == 0 else {}
    check(r.returncode == 0 and a.get("frames", 0) > 0 and r.stderr == "",
          "adapt on the unlabelled DICOM tree, without warnings (%s %s)" % (a, r.stderr[-200:]))
    tuned, adapted = tensors(os.path.join(m2, "weights.safetensors")), \
        tensors(os.path.join(m3, "weights.safetensors"))
    stats = [k for k in tuned if "running_" in k]
    check(all(tuned[k] == adapted[k] for k in tuned if "running_" not in k)
          and any(tuned[k] != adapted[k] for k in stats),
          "adapt changes BN running statistics only")
    t3 = training_section(m3)
    check("  init_from:\n" in t3 and "  adapted:\n    method: adabn\n    source_model: \"%s\"\n"
          "    source_weights_hash: \"%s\"\n    data: \"%s\"\n    frames: %d\n"
          % (m2, fnv1a64(os.path.join(m2, "weights.safetensors")), site, a.get("frames", -1))
          in t3 and "    source: given\n" in t3,
          "the adapted bundle keeps the training record and its split, and adds `adapted:`")
    r = run("adapt", "--model", m2, "--data", site, "--out", m3)
    check(r.returncode == 1 and "already holds a model: give --force" in r.stderr,
          "adapt will not overwrite a bundle without --force (%s)" % r.stderr.strip())
    r = run("adapt", "--model", m2, "--data", own, "--out", m3, "--force")
    check(r.returncode == 1 and "unlabelled frames come from a folder" in r.stderr,
          "adapt on a manifest: refused (%s)" % r.stderr.strip())
    r = run("inspect", "--model", m3)
    check(r.returncode == 0 and "\ntraining\n  command: " in r.stdout and "  adapted:" in r.stdout
          and "      test: " in r.stdout and " patients\n" in r.stdout,
          "inspect shows the training record, patient lists as counts")
    r = run("eval", "--model", m3, "--data", site, "--json", "--threads", "2")
    j = json.loads(r.stdout) if r.returncode == 0 else {}
    check(r.returncode == 0 and len(j.get("classes", [])) == 14,
          "eval of the adapted bundle keeps to its recorded split (%s)" % r.stderr.strip()[-200:])

    # export
    onnx = os.path.join(tmp, "m.onnx")
    r = run("export", "--model", m3, "--format", "onnx", "--out", onnx)
    if r.returncode == 1 and "no ONNX export" in r.stderr:
        print("skip ONNX: this build has no protobuf-c")
    else:
        blob = open(onnx, "rb").read() if r.returncode == 0 else b""
        views = json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                            "views.json")))
        check(r.returncode == 0 and b"logits" in blob and
              json.dumps(views, separators=(",", ":")).encode() in blob and
              b'{"width":16,"height":16,"channels":1}' in blob and
              b'"normalize":"none"}' in blob,
              "export --format onnx writes the network with the class names, input size and "
              "preprocessing as metadata (%s)" % r.stderr.strip())
        m1onnx = os.path.join(tmp, "own.onnx")
        r = run("export", "--model", m1, "--format", "onnx", "--out", m1onnx)
        check(r.returncode == 0 and json.dumps(OWN, ensure_ascii=False, separators=(",", ":"))
              .encode() in open(m1onnx, "rb").read(),
              "the own class names, accents and spaces kept, in the ONNX metadata")
    r = run("export", "--model", m3, "--format", "tflite", "--out", onnx)
    check(r.returncode == 2 and "--format onnx, got 'tflite'" in r.stderr,
          "export of an unknown format: usage error (%s)" % r.stderr.strip())

    # ---- the whole hospital: DICOM loops, MP4 clips, a JPEG class-folder tree, one manifest
    gst = shutil.which("gst-launch-1.0")

    def gst_run(*pipeline):
        return gst and subprocess.run([gst, "-q", *pipeline], capture_output=True,
                                      timeout=120).returncode == 0

    seq = os.path.join(tmp, "seq")
    run("phantom", "--out", seq, "--size", "32", "--patients", "6", "--frames-per-patient", "3",
        "--seed", "21", "--threads", "2", "--sequence")
    views = {"A2CH": OWN[0], "A4CH-LV": OWN[1], "PLAX-full": OWN[2], "PSAX-AV": OWN[3]}
    views[min(v for v in os.listdir(seq) if v not in MAP and
              os.path.isdir(os.path.join(seq, v)))] = OWN[4]  # a view the site calls other
    check(len(set(views.values())) == 5, "the phantom has a view for each of the 5 classes (%s)"
          % sorted(views))
    mp4, jpg = os.path.join(tmp, "mp4"), os.path.join(tmp, "jpeg")
    os.makedirs(mp4)
    clips, stills = [], []
    for p in range(6):
        for v, c in views.items():
            src = os.path.join(seq, v, "p%04d_f%%02d.png" % p)
            if not os.path.exists(src % 0):
                continue
            if p < 3:  # patients 0-2: one 3-frame H.264 loop per view
                out = os.path.join(mp4, "p%04d_%s.mp4" % (p, v))
                if gst_run("multifilesrc", "location=" + src, "index=0", "stop-index=2",
                           "caps=image/png,framerate=30/1", "!", "pngdec", "!", "videoconvert",
                           "!", "video/x-raw,format=I420", "!", "openh264enc", "!", "h264parse",
                           "!", "mp4mux", "!", "filesink", "location=" + out):
                    clips.append((out, c, "mp4-p%d" % p))
            else:  # patients 3-5: JPEG stills in jpeg/<class>/
                d = os.path.join(jpg, c)
                os.makedirs(d, exist_ok=True)
                out = os.path.join(d, "p%04d_%s_f%%02d.jpg" % (p, v))
                if gst_run("multifilesrc", "location=" + src, "index=0", "stop-index=2",
                           "caps=image/png,framerate=30/1", "!", "pngdec", "!", "jpegenc", "!",
                           "multifilesink", "location=" + out):
                    stills += [(out % i, c, "jpg-p%d" % p) for i in range(3)]
    if not clips or not stills:
        print("skip the MP4/JPEG hospital: no gst-launch-1.0 with openh264enc, mp4mux and "
              "jpegenc (gstreamer1.0-plugins-bad, -good)")
        finish()
    check(len(clips) == 15 and len(stills) == 45,
          "the hospital's files: %d MP4 clips of 3 patients, %d JPEG frames of 3 more"
          % (len(clips), len(stills)))

    # the JPEG tree alone: one subfolder per class, the class list from their names
    mj = os.path.join(tmp, "m-jpeg")
    r = run("train", "--data", jpg, "--out", mj, "--patient-regex", "/(p[0-9]+)_", *TRAIN)
    check(r.returncode == 0 and "classes from %s, in byte order (--classes for another): %s\n"
          % (jpg, ", ".join(by_byte)) in r.stderr,
          "a JPEG class-folder tree: the classes are its folder names in byte order (%s)"
          % r.stderr.strip()[-300:])
    bad = os.path.join(tmp, "jpeg-bad")
    shutil.copytree(jpg, bad)
    os.makedirs(os.path.join(bad, "Vue parasternale"))
    r = run("train", "--data", bad, "--out", mj + "2", *TRAIN)
    check(r.returncode == 1 and "%s/Vue parasternale: class folder without PNG, JPEG, PGM, "
          "DICOM or video files" % bad in r.stderr,
          "an empty class folder: refused, named (%s)" % r.stderr.strip())
    os.rmdir(os.path.join(bad, "Vue parasternale"))
    shutil.copy(stills[0][0], os.path.join(bad, "stray.jpg"))
    r = run("train", "--data", bad, "--out", mj + "2", *TRAIN)
    check(r.returncode == 1 and "%s/stray.jpg: a frame file outside any class folder" % bad
          in r.stderr, "a frame outside any class folder: refused, named (%s)" % r.stderr.strip())

    one = os.path.join(tmp, "one-label.csv")
    with open(one, "w", encoding="utf-8") as f:
        f.write("path,label\n%s,Vue apicale\n%s,vue-apicale\n" % (stills[0][0], stills[1][0]))
    r = run("train", "--data", one, "--out", mj + "2", *TRAIN)
    check(r.returncode == 1 and "%s: 1 class label (Vue apicale); a classifier needs 2 or more"
          % one in r.stderr, "a manifest of one label (two spellings): refused (%s)"
          % r.stderr.strip())
    with open(one, "a", encoding="utf-8") as f:
        f.write('%s,"PLAX ""long"""\n' % stills[2][0])
    r = run("train", "--data", one, "--out", mj + "2", *TRAIN)
    check(r.returncode == 1 and "the label 'PLAX \"long\"' cannot be a class name: it has a comma "
          "or a double quote" in r.stderr, "a label that cannot be a class name: refused (%s)"
          % r.stderr.strip())

    # one manifest mixing the three: DICOM patients from the tags, the others from a column
    mixed = os.path.join(tmp, "mixed.csv")
    with open(mixed, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "patient"])
        for row in rows:
            w.writerow([os.path.join("hospital", row["path"]), OWN[MAP.get(row["label"], 4)], ""])
        for path, c, pat in clips + stills:
            w.writerow([os.path.relpath(path, tmp), c, pat])
    mm = os.path.join(tmp, "m-mixed")
    r = run("train", "--data", mixed, "--out", mm, *TRAIN)
    t5 = training_section(mm) if r.returncode == 0 else ""
    n5 = [int(x) for x in t5.split("frames: {train: ")[1].split("}")[0]
          .replace("val: ", "").replace("test: ", "").split(", ")] if t5 else [0]
    check(r.returncode == 0 and sum(n5) == 3 * len(rows) + 3 * len(clips) + len(stills),
          "train on the mixed manifest: %s frames per split = 3 per DICOM loop and MP4 clip, "
          "1 per JPEG (%s)" % (n5, r.stderr.strip()[-300:]))
    rep = os.path.join(tmp, "report-mixed")
    r = run("eval", "--model", mm, "--data", mixed, "--split", "all", "--out", rep, "--json",
            "--threads", "2")
    j = json.loads(r.stdout) if r.returncode == 0 else {}
    pr = list(csv.DictReader(open(os.path.join(rep, "predictions.csv"), encoding="utf-8"))) \
        if r.returncode == 0 else []
    kinds = {os.path.splitext(x["file"])[1] for x in pr}
    check(kinds == {".dcm", ".mp4", ".jpg"} and j.get("frames") == sum(n5) and
          j.get("clips") == len(rows) + len(clips) + len(stills) and
          j.get("bootstrap", {}).get("patients") == 5 + 6,
          "eval of the mix: DICOM, MP4 and JPEG frames (%s), %s clips, intervals over %s "
          "patients (%s)" % (sorted(kinds), j.get("clips"), j.get("bootstrap", {})
                             .get("patients"), r.stderr.strip()[-200:]))

    import xml.etree.ElementTree as ET
    svgs = {}
    for name in ("confusion", "reliability"):
        try:
            svgs[name] = ET.parse(os.path.join(rep, name + ".svg")).getroot()
        except (OSError, ET.ParseError) as e:
            svgs[name] = None
            print("%s.svg: %s" % (name, e))
    texts = lambda root: ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    conf = texts(svgs["confusion"]) if svgs["confusion"] is not None else []
    rel = texts(svgs["reliability"]) if svgs["reliability"] is not None else []
    check(all(conf.count(c) == 2 for c in OWN) and "predicted" in conf and "true" in conf and
          os.path.exists(os.path.join(rep, "confusion.png")),
          "confusion.svg beside confusion.png: well-formed, every class name (accents and spaces "
          "kept) on both axes, axes named")
    check("confidence" in rel and "accuracy" in rel and "per bin" in rel,
          "reliability.svg beside reliability.png: axes and legend named (%s)" % rel[:4])

    # fine-tune the shipped 96 px model onto the 5 classes at 32 px, a tenth of the rate for
    # its own tensors; classify a JPEG, run it in the element on an MP4 clip, adapt, export
    if shipped and os.path.isdir(shipped):
        mt = os.path.join(tmp, "m-hospital")
        r = run("train", "--data", mixed, "--out", mt, "--init-from", shipped, "--size", "32",
                "--lr", "1e-3", "--lr-backbone", "1e-4", "--freeze", "stem",
                "--freeze-epochs", "1", "--epochs", "2", *SMALL[2:])
        yaml = open(os.path.join(mt, "model.yaml"), encoding="utf-8").read() \
            if r.returncode == 0 else ""
        check(r.returncode == 0 and "re-initialised: classifier.weight, classifier.bias" in
              r.stderr and "classes: [%s]" % ", ".join('"%s"' % x for x in by_byte) in yaml
              and "  lr_backbone: 0.0001\n" in yaml,
              "fine-tune models/echo-2cell-96 onto the hospital's 5 classes (%s)"
              % r.stderr.strip()[-300:])
        r = run("classify", "--model", mt, stills[0][0])
        c = json.loads(r.stdout) if r.returncode == 0 else {}
        check(c.get("label") in OWN and sorted(c.get("probabilities", {})) == sorted(OWN),
              "classify a hospital JPEG with the fine-tuned model (%s)" % c.get("label"))
        try:
            import gi
            gi.require_version("Gst", "1.0")
            from gi.repository import Gst
        except (ImportError, ValueError):
            Gst = None
        if os.environ.get("GST_PLUGIN_PATH") and Gst:
            Gst.init(None)
            pipe = Gst.parse_launch(
                'filesrc location="%s" ! decodebin ! videoconvert ! echoviewclassify name=c '
                'model-file="%s" roi=full updates=every-frame smoothing=1 hysteresis=1 '
                '! fakesink sync=false' % (clips[0][0], os.path.join(mt, "model.yaml")))
            bus = pipe.get_bus()
            pipe.set_state(Gst.State.PLAYING)
            got, wrong, end = [], 0, None
            while end is None:
                msg = bus.timed_pop_filtered(30 * Gst.SECOND, Gst.MessageType.ELEMENT |
                                             Gst.MessageType.EOS | Gst.MessageType.ERROR)
                if msg is None or msg.type != Gst.MessageType.ELEMENT:
                    end = msg.type if msg is not None else "timeout"
                    break
                st = msg.get_structure()
                if st.get_name() != "echoviewclassify":
                    continue
                ok, arr = st.get_array("probabilities")
                prob = [arr.get_nth(i) for i in range(arr.n_values)] if ok else []
                got.append(st.get_string("label"))
                wrong += len(prob) != 5 or got[-1] not in OWN + ["unknown"]
            classes = list(pipe.get_by_name("c").get_property("classes") or [])
            pipe.set_state(Gst.State.NULL)
            check(end == Gst.MessageType.EOS and classes == by_byte and len(got) == 3 and
                  not wrong and any(x in OWN for x in got),
                  "the element runs the fine-tuned model on an H.264 MP4 clip: its classes are "
                  "the hospital's, 3 messages of 5 probabilities (labels %s)" % got)
        else:
            print("skip the element: no GStreamer plugin built, or no PyGObject")
        ma = os.path.join(tmp, "m-hospital-adapted")
        r = run("adapt", "--model", mt, "--data", jpg, "--out", ma, "--batch", "15",
                "--threads", "2")
        check(r.returncode == 0 and json.loads(r.stdout).get("frames") == len(stills),
              "adapt the fine-tuned model on the unlabelled JPEG tree (%s)" % r.stderr.strip())
        h = os.path.join(tmp, "h.onnx")
        r = run("export", "--model", ma, "--format", "onnx", "--softmax", "--out", h)
        check((r.returncode == 0 and b"probabilities" in open(h, "rb").read() and
               json.dumps(by_byte, ensure_ascii=False, separators=(",", ":")).encode()
               in open(h, "rb").read()) or "no ONNX export" in r.stderr,
              "export the adapted hospital model with its 5 classes and a probabilities output "
              "(%s)" % r.stderr.strip())
    else:
        print("skip fine-tuning the shipped model: no echo-2cell-96 bundle given")

finish()
