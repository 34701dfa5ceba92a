#!/usr/bin/env python3
"""test_inspect.py: gst-inspect-1.0 shows every property of the plugin's elements with a blurb
that states a default or says read-only (units where a number has one), and the documented
property set is complete, the runtime-tunable numbers are controllable, and the licence is one GStreamer recognises. usage: test_inspect.py (GST_PLUGIN_PATH set by meson)."""
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'common'))
from testlib import check, finish  # noqa: E402

EXPECTED = {
    "echoviewclassify": {
        "model-file", "model-instance-id", "backend", "gpu-id", "threads", "roi", "roi-interval",
        "inference-interval", "async", "confidence-threshold", "smoothing", "hysteresis",
        "updates", "reset-on", "unique-id", "backend-used", "active-roi", "model-users", "model-name", "classes", "frames", "inferred", "skipped", "latency-mean",
        "latency-p99", "process-mean", "process-p99", "engine-mean"},
    "echophantomsrc": {"view", "schedule", "seed", "quality", "overlays", "is-live",
                       "num-buffers", "phantom-version", "cache-size"},
    "dicomsrc": {"location", "loop", "frames", "frame-time", "roi"},
    "echoviewoverlay": {"unique-id", "font-scale"},
}
# numbers tunable while playing: a GstControlSource may drive them
CONTROLLABLE = {"echoviewclassify": {"roi-interval", "inference-interval", "confidence-threshold",
                                     "smoothing", "hysteresis"}}
# dicomsrc is built only with DCMTK
OPTIONAL = {"dicomsrc"}
# properties from GStreamer base classes: their blurbs are GStreamer's
INHERITED = {"name", "parent", "qos", "blocksize", "num-buffers", "typefind", "do-timestamp",
             "automatic-eos"}
UNITS = {"gpu-id": None, "threads": None, "roi-interval": "frames",
         "inference-interval": "frames", "smoothing": "inferences", "hysteresis": "inferences",
         "latency-mean": "microseconds", "latency-p99": "microseconds",
         "process-mean": "microseconds", "process-p99": "microseconds",
         "engine-mean": "microseconds", "confidence-threshold": "probability",
         "schedule": "seconds", "frame-time": "milliseconds", "cache-size": "MiB",
         "font-scale": "video pixels"}


def properties(element):
    """{name: (blurb, flags line)} as gst-inspect-1.0 shows them; None if no such element."""
    out = subprocess.run(["gst-inspect-1.0", element], capture_output=True, text=True)
    if element in OPTIONAL and out.returncode != 0:
        return None
    check(out.returncode == 0, f"gst-inspect-1.0 {element} runs")
    text = out.stdout.split("Element Properties:", 1)[-1]
    props = {}
    for m in re.finditer(r"^  ([a-z0-9-]+)\s*: (.*)\n\s*flags: (.*)$", text, re.M):
        props[m.group(1)] = (m.group(2).strip(), m.group(3))
    return props


for element, expected in EXPECTED.items():
    props = properties(element)
    if props is None:
        print(f"skip {element}: not built")
        continue
    for name in sorted(CONTROLLABLE.get(element, ())):
        check(name in props and "controllable" in props[name][1],
              f"{element} {name}: controllable ({props.get(name, ('', ''))[1]})")
    props = {name: blurb for name, (blurb, flags) in props.items()}
    missing = expected - set(props)
    check(not missing, f"{element}: every documented property shown (missing {sorted(missing)})")
    for name, blurb in sorted(props.items()):
        if name in INHERITED:
            continue
        check(len(blurb) > 20 and ("default" in blurb or "read-only" in blurb),
              f"{element} {name}: blurb states default or read-only: {blurb[:70]!r}")
        unit = UNITS.get(name)
        if unit:
            check(unit in blurb, f"{element} {name}: blurb states the unit ({unit})")

# the plugin's licence is one GStreamer knows: no "unknown license" warning when it loads
env = dict(os.environ, GST_DEBUG="GST_PLUGIN_LOADING:2", GST_DEBUG_NO_COLOR="1",
           GST_REGISTRY=os.path.join(tempfile.mkdtemp(), "registry.bin"))
out = subprocess.run(["gst-inspect-1.0", "echoview"], capture_output=True, text=True, env=env)
check(re.search(r"^  License\s+MIT/X11$", out.stdout, re.M) is not None,
      "plugin licence: MIT/X11")
check("license" not in out.stderr.lower(),
      f"no licence warning at load: {[l for l in out.stderr.splitlines() if 'icense' in l]}")

finish()
