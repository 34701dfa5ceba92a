#!/usr/bin/env python3
"""test_controllable.py: echoviewclassify's controllable properties follow a GstControlSource at
each buffer's stream time (GstBaseTransform syncs them before the frame is classified):
confidence-threshold 0 for the first 5 frames, then 1; every frame from the 6th on reports
label "unknown", the frames before it the top class.
usage: test_controllable.py MODEL_DIR (GST_PLUGIN_PATH set by meson)"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'common'))
from testlib import gi_modules  # noqa: E402

Gst, GstController = gi_modules("Gst", "GstController")

Gst.init(None)
FPS, FRAMES = 30, 10
pipe = Gst.parse_launch(
    f"echophantomsrc view=A4CH-LV is-live=false num-buffers={FRAMES} "
    f"! video/x-raw,format=GRAY8,width=160,height=120,framerate={FPS}/1 "
    f"! echoviewclassify name=c model-file={sys.argv[1]} unique-id=1 roi=full "
    "! appsink name=sink sync=false")
classify = pipe.get_by_name("c")
source = GstController.InterpolationControlSource()
source.set_property("mode", GstController.InterpolationMode.NONE)
classify.add_control_binding(
    GstController.DirectControlBinding.new_absolute(classify, "confidence-threshold", source))
source.set(0, 0.0)
source.set(5 * Gst.SECOND // FPS, 1.0)
pipe.set_state(Gst.State.PLAYING)
labels = []
for _ in range(FRAMES):
    sample = pipe.get_by_name("sink").emit("pull-sample")
    if sample is None:
        break
    s = sample.get_buffer().get_custom_meta("echoview-result-1").get_structure()
    labels.append(s.get_string("label"))
threshold = classify.get_property("confidence-threshold")
pipe.set_state(Gst.State.NULL)
ok = (len(labels) == FRAMES and all(l != "unknown" for l in labels[:5])
      and all(l == "unknown" for l in labels[5:]) and threshold == 1.0)
print(("ok   " if ok else "FAIL ") + f"threshold from the control source: labels {labels}, "
      f"confidence-threshold now {threshold}")
sys.exit(0 if ok else 1)
