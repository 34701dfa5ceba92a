#!/usr/bin/env python3
"""test_own_classes.py: a model trained on a class list of one's own (`echoview train
--classes`, names with spaces and accents, `other` among them) runs in echoviewclassify as it
is: its `classes` property is the list, and every element message's label is one of them and
the argmax of probabilities over exactly those classes.
usage: test_own_classes.py ECHOVIEW_BINARY (GST_PLUGIN_PATH set by meson)"""
import csv
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'common'))
from testlib import check, finish, gi_modules  # noqa: E402

Gst, = gi_modules("Gst")

OWN = ["Vue 4 cavités", "PLAX", "other"]
FRAMES = 6


exe = sys.argv[1]
with tempfile.TemporaryDirectory() as tmp:
    ph = os.path.join(tmp, "ph")
    subprocess.run([exe, "phantom", "--out", ph, "--size", "16", "--patients", "5",
                    "--frames-per-patient", "1", "--seed", "4", "--threads", "2"],
                   capture_output=True, check=True)
    rows = list(csv.DictReader(open(os.path.join(ph, "manifest.csv"))))
    with open(os.path.join(ph, "own.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "split", "patient"])
        for r in rows:
            label = OWN[0] if r["label"].startswith("A4CH") else \
                OWN[1] if r["label"].startswith("PLAX") else OWN[2]
            w.writerow([r["path"], label, r["split"], r["patient"]])
    model = os.path.join(tmp, "m")
    r = subprocess.run([exe, "train", "--data", os.path.join(ph, "own.csv"), "--out", model,
                        "--size", "16", "--init-channels", "4", "--layout", "normal,reduce",
                        "--epochs", "1", "--batch", "6", "--threads", "2", "--steps-per-epoch",
                        "2", "--classes", ",".join(OWN), "--quiet"],
                       capture_output=True, text=True)
    check(r.returncode == 0, "train a 3-class model of one's own (%s)" % r.stderr.strip())

    Gst.init(None)
    pipe = Gst.parse_launch(
        f"echophantomsrc view=PLAX-full is-live=false num-buffers={FRAMES} "
        "! video/x-raw,format=GRAY8,width=64,height=64 "
        f"! echoviewclassify name=c model-file={model}/model.yaml roi=full updates=every-frame "
        "! fakesink sync=false")
    bus = pipe.get_bus()
    pipe.set_state(Gst.State.PLAYING)
    labels, bad = [], 0
    while True:
        msg = bus.timed_pop_filtered(5 * Gst.SECOND, Gst.MessageType.ELEMENT
                                     | Gst.MessageType.EOS | Gst.MessageType.ERROR)
        if msg is None or msg.type != Gst.MessageType.ELEMENT:
            check(msg is not None and msg.type == Gst.MessageType.EOS,
                  "pipeline reaches EOS (%s)" % (msg.parse_error()[1] if msg is not None and
                                                 msg.type == Gst.MessageType.ERROR else ""))
            break
        s = msg.get_structure()
        if s.get_name() != "echoviewclassify":
            continue
        ok, arr = s.get_array("probabilities")
        p = [arr.get_nth(i) for i in range(arr.n_values)] if ok else []
        label = s.get_string("label")
        labels.append(label)
        bad += not (len(p) == len(OWN) and label in OWN
                    and OWN[max(range(len(p)), key=lambda i: p[i])] == label)
    classes = pipe.get_by_name("c").get_property("classes")
    pipe.set_state(Gst.State.NULL)
    check(list(classes) == OWN, f"the element's classes property is the own list ({classes})")
    check(len(labels) == FRAMES and bad == 0,
          f"every message labels the frame with one of the 3 classes, the argmax of 3 "
          f"probabilities ({len(labels)} messages, {bad} not; labels {sorted(set(labels))})")
finish()
