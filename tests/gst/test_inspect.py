#!/usr/bin/env python3
"""test_inspect.py: gst-inspect-1.0 shows every property of the plugin's elements with a blurb
that states a default or says read-only (units where a number has one), and the documented
property set is complete. usage: test_inspect.py (GST_PLUGIN_PATH set by meson)."""
import re
import subprocess
import sys

EXPECTED = {
    "echoviewclassify": {
        "model-file", "model-instance-id", "backend", "gpu-id", "threads", "roi", "roi-interval",
        "inference-interval", "async", "confidence-threshold", "smoothing", "hysteresis",
        "updates", "active-roi", "model-users", "model-name", "classes", "frames", "inferred", "skipped", "latency-mean",
        "latency-p99", "process-mean", "process-p99", "engine-mean"},
    "echophantomsrc": {"view", "schedule", "seed", "quality", "overlays", "is-live",
                       "num-buffers", "phantom-version"},
}
# properties from GStreamer base classes: their blurbs are GStreamer's
INHERITED = {"name", "parent", "qos", "blocksize", "num-buffers", "typefind", "do-timestamp",
             "automatic-eos"}
UNITS = {"gpu-id": None, "threads": None, "roi-interval": "frames",
         "inference-interval": "frames", "smoothing": "inferences", "hysteresis": "inferences",
         "latency-mean": "microseconds", "latency-p99": "microseconds",
         "process-mean": "microseconds", "process-p99": "microseconds",
         "engine-mean": "microseconds", "confidence-threshold": "probability",
         "schedule": "seconds"}

failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    failures += 0 if ok else 1


def properties(element):
    out = subprocess.run(["gst-inspect-1.0", element], capture_output=True, text=True)
    check(out.returncode == 0, f"gst-inspect-1.0 {element} runs")
    text = out.stdout.split("Element Properties:", 1)[-1]
    props = {}
    for m in re.finditer(r"^  ([a-z0-9-]+)\s*: (.*)$", text, re.M):
        props[m.group(1)] = m.group(2).strip()
    return props


for element, expected in EXPECTED.items():
    props = properties(element)
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

print(f"{failures} failed")
sys.exit(1 if failures else 0)
