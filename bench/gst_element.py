#!/usr/bin/env python3
"""gst_element.py: the measurements behind bench/gst_element.sh (run that). Reads the element's
own statistics (process-*, engine-mean, latency-*, frames, inferred, skipped) after each run."""
import os
import sys
import time

import gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

Gst.init(None)
MODEL = sys.argv[1]


def run(desc, launch, seconds=None):
    pipe = Gst.parse_launch(launch)
    cls = pipe.get_by_name("c")
    t0 = time.monotonic()
    pipe.set_state(Gst.State.PLAYING)
    bus = pipe.get_bus()
    timeout = (seconds + 5 if seconds else 300) * Gst.SECOND
    msg = bus.timed_pop_filtered(timeout, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    wall = time.monotonic() - t0
    if msg and msg.type == Gst.MessageType.ERROR:
        print(desc, "ERROR", msg.parse_error()[0].message)
    stats = {k: cls.get_property(k) for k in ("frames", "inferred", "skipped", "process-mean",
                                              "process-p99", "engine-mean", "latency-mean",
                                              "latency-p99")}
    pipe.set_state(Gst.State.NULL)
    print(f"{desc:58s} frames {stats['frames']:5d} inferred {stats['inferred']:5d} "
          f"skipped {stats['skipped']:4d} | in-element mean {stats['process-mean']:8.0f} us "
          f"p99 {stats['process-p99']:8.0f} us | engine {stats['engine-mean']:8.0f} us | "
          f"result latency mean {stats['latency-mean']:8.0f} us p99 {stats['latency-p99']:8.0f}"
          f" us | wall {wall:5.1f} s")
    return stats


src = "echophantomsrc is-live={live} num-buffers={n} schedule=A4CH-LV:2,PLAX-full:2 ! " \
      "video/x-raw,format={fmt},width=800,height=600,framerate=30/1"
cls = "echoviewclassify name=c model-file={m} backend={b} threads=1 updates=none {extra}"

print("\n## Per-frame cost, 800x600, sync, inference-interval 1, one thread (frames pre-rendered by a non-live source)")
for fmt in ("GRAY8", "RGB"):
    for roi in ("full", "auto"):
        s = run(f"{fmt} roi={roi}", f"{src.format(live='false', n=300, fmt=fmt)} ! "
                f"{cls.format(m=MODEL, b='cpu', extra='roi=' + roi)} ! fakesink")
        print(f"    element overhead (conversion, crop, resize, meta) = "
              f"{s['process-mean'] - s['engine-mean']:.0f} us/frame beside {s['engine-mean']:.0f} us of engine")
s = run("NV12 roi=auto (videoconvert upstream, not counted)",
        f"{src.format(live='false', n=300, fmt='GRAY8')} ! videoconvert ! video/x-raw,format=NV12 ! "
        f"{cls.format(m=MODEL, b='cpu', extra='roi=auto')} ! fakesink")

print("\n## Live 30 fps 800x600 GRAY8 for 10 s, source and element pinned to one core (taskset by the caller if wanted)")
try:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    print("    (this process pinned to CPU", min(os.sched_getaffinity(0)), ")")
except (AttributeError, OSError):
    pass
s = run("live, sync", f"{src.format(live='true', n=300, fmt='GRAY8')} ! "
        f"{cls.format(m=MODEL, b='cpu', extra='roi=auto')} ! fakesink sync=true", seconds=10)
print(f"    sustains 30 fps on one core: {'yes' if s['frames'] == 300 and s['inferred'] == 300 and s['skipped'] == 0 and s['process-p99'] < 33333 else 'NO'}"
      f" (p99 in element {s['process-p99'] / 1000:.1f} ms of the 33.3 ms frame budget)")
os.sched_setaffinity(0, set(range(os.cpu_count())))

print("\n## Inference slower than the frame rate (reference backend), live 30 fps, 10 s")
for mode in ("false", "true"):
    run(f"reference backend, async={mode}",
        f"{src.format(live='true', n=300, fmt='GRAY8')} ! "
        f"{cls.format(m=MODEL, b='reference', extra='roi=auto async=' + mode)} ! fakesink sync=true",
        seconds=10)
