#!/usr/bin/env python3
"""test_custom_meta.py: per-buffer results read from Python (PyGObject, python3-gi) through the
custom meta "echoview-result-<unique-id>": two chained echoviewclassify elements with their own
models on phantom frames; every buffer carries both results, each equal to the element message
of the same frame and unique-id (updates=every-frame), with the element's model and classes.
usage: test_custom_meta.py GRAY_MODEL_DIR SECOND_GRAY_MODEL_DIR (GST_PLUGIN_PATH set by meson)"""
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'common'))
from testlib import check, finish, gi_modules  # noqa: E402

Gst, = gi_modules("Gst")

FRAMES = 12


def probabilities(s):
    ok, arr = s.get_array("probabilities")
    return [arr.get_nth(i) for i in range(arr.n_values)] if ok else []


Gst.init(None)
model_a, model_b = sys.argv[1], sys.argv[2]
pipe = Gst.parse_launch(
    f"echophantomsrc view=PLAX-full is-live=false num-buffers={FRAMES} "
    "! video/x-raw,format=GRAY8,width=160,height=120 "
    f"! echoviewclassify name=a model-file={model_a} unique-id=1 roi=full updates=every-frame "
    f"! echoviewclassify name=b model-file={model_b} unique-id=2 roi=full updates=every-frame "
    "! appsink name=sink sync=false")
sink = pipe.get_by_name("sink")
bus = pipe.get_bus()
pipe.set_state(Gst.State.PLAYING)
results = {1: {}, 2: {}}   # unique-id -> pts -> structure from the meta
classes = {}
for _ in range(FRAMES):
    sample = sink.emit("pull-sample")
    if sample is None:
        break
    buf = sample.get_buffer()
    for uid in (1, 2):
        meta = buf.get_custom_meta(f"echoview-result-{uid}")
        if meta is not None:
            results[uid][buf.pts] = meta.get_structure().copy()
for name in ("a", "b"):
    classes[name] = pipe.get_by_name(name).get_property("classes")
models = {1: pipe.get_by_name("a").get_property("model-name"),
          2: pipe.get_by_name("b").get_property("model-name")}
messages = {1: {}, 2: {}}
while True:
    msg = bus.timed_pop_filtered(2 * Gst.SECOND, Gst.MessageType.ELEMENT | Gst.MessageType.EOS
                                 | Gst.MessageType.ERROR)
    if msg is None or msg.type != Gst.MessageType.ELEMENT:
        check(msg is not None and msg.type == Gst.MessageType.EOS, "pipeline reaches EOS")
        break
    s = msg.get_structure()
    if s.get_name() == "echoviewclassify":
        messages[s.get_uint("unique-id")[1]][s.get_uint64("timestamp")[1]] = s
pipe.set_state(Gst.State.NULL)

check(models[1] != models[2], f"two models: {models[1]}, {models[2]}")
for uid, name in ((1, "a"), (2, "b")):
    got = results[uid]
    check(len(got) == FRAMES, f"unique-id {uid}: a custom meta on every buffer ({len(got)})")
    bad = 0
    for pts, s in got.items():
        p = probabilities(s)
        label_id = s.get_int("label-id")[1]
        m = messages[uid].get(pts)
        top = max(range(len(p)), key=lambda i: p[i]) if p else -1
        ok = (len(p) == len(classes[name]) and abs(sum(p) - 1) < 1e-5
              and s.get_uint("unique-id")[1] == uid and s.get_string("model") == models[uid]
              and label_id == top and s.get_string("label") == classes[name][top]
              and s.get_boolean("inferred")[1] and s.get_uint64("age")[1] == 0
              and s.get_string("ground-truth") == "PLAX-full"
              and m is not None and probabilities(m) == p
              and m.get_string("stable-label") == s.get_string("stable-label")
              and math.isclose(m.get_double("confidence")[1], s.get_double("confidence")[1]))
        bad += 0 if ok else 1
    check(bad == 0, f"unique-id {uid}: every meta holds its model's result, equal to the "
          f"message of that frame ({bad} differ)")
differ = sum(1 for pts in results[1] if pts in results[2]
             and probabilities(results[1][pts]) != probabilities(results[2][pts]))
check(differ == len(results[1]), f"the two metas are not one overwriting the other ({differ})")
finish()
