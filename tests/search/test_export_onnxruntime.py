#!/usr/bin/env python3
"""test_export_onnxruntime.py: `echoview export --format onnx` checked against ONNX Runtime:
the shipped echo-2cell-32 and echo-2cell-96 bundles and a model trained on a class list of
one's own are exported, and ONNX Runtime (CPU, onnxruntime-node, bench/onnx_check.mjs) must
give the engine's logits (bench_engine, cpu backend) for a batch of 2 random inputs within
1e-4 of the largest logit, and with --softmax a second output equal to softmax(logits /
temperature) within 1e-5. Skipped (77) without node or without bench/node_modules (install
it with `cd bench && npm ci --ignore-scripts`; CI does not, so there it is skipped), or when
the build has no ONNX export (protobuf-c).

usage: test_export_onnxruntime.py ECHOVIEW BENCH_ENGINE SOURCE_ROOT
"""
import array
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'common'))
from testlib import check, finish  # noqa: E402

exe, bench, root = sys.argv[1:4]
node = shutil.which("node")
ort = os.path.join(root, "bench", "node_modules", "onnxruntime-node")
if not node or not os.path.isdir(ort):
    print("skip: no node or no %s (cd bench && npm ci --ignore-scripts)" % ort)
    sys.exit(77)


def run(*args):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=300)


with tempfile.TemporaryDirectory() as tmp:
    own = os.path.join(tmp, "own")
    ph = os.path.join(tmp, "ph")
    run(exe, "phantom", "--out", ph, "--size", "16", "--patients", "5",
        "--frames-per-patient", "1", "--seed", "4", "--threads", "2")
    data = os.path.join(tmp, "data")  # one folder per class of one's own: the class list
    for view, cls in (("A2CH", "Apical 2"), ("A4CH-LV", "Vue 4 cavités"), ("PLAX-full", "PLAX"),
                      ("PSAX-AV", "other")):
        shutil.copytree(os.path.join(ph, view), os.path.join(data, cls))
    r = run(exe, "train", "--data", data, "--out", own, "--size", "24", "--init-channels", "4",
            "--layout", "normal,reduce", "--epochs", "1", "--batch", "8", "--threads", "2",
            "--steps-per-epoch", "2", "--patient-regex", "/(p[0-9]+)_", "--quiet")
    check(r.returncode == 0, "a 4-class model of one's own at 24 px (%s)" % r.stderr.strip())
    r = run(exe, "eval", "--model", own, "--data", data, "--split", "val", "--calibrate",
            "--patient-regex", "/(p[0-9]+)_")  # a temperature other than 1 for --softmax
    check(r.returncode == 0 and json.loads(r.stdout).get("temperature", 1) != 1,
          "calibrate it (%s)" % (r.stdout.strip() + r.stderr.strip())[-200:])
    models = [(os.path.join(root, "models", "echo-2cell-32"), 32),
              (os.path.join(root, "models", "echo-2cell-96"), 96), (own, 24)]
    for model, size in models:
        name = os.path.basename(model)
        onnx = os.path.join(tmp, name + ".onnx")
        r = run(exe, "export", "--model", model, "--format", "onnx", "--out", onnx)
        if r.returncode == 1 and "no ONNX export" in r.stderr:
            print("skip: this build has no ONNX export (protobuf-c)")
            sys.exit(77)
        check(r.returncode == 0, "export %s (%s)" % (name, r.stderr.strip()))
        inp, logits = os.path.join(tmp, name + ".f32"), os.path.join(tmp, name + ".logits")
        rng = random.Random(size)
        array.array("f", (rng.random() for _ in range(2 * size * size))).tofile(open(inp, "wb"))
        r = run(bench, "run", model, "cpu", "1", "2", "1", inp, logits)
        check(r.returncode == 0, "the engine's logits of %s (%s)" % (name, r.stderr.strip()))
        found = re.search(r"\btemperature:\s*([0-9.eE+-]+)",
                          open(os.path.join(model, "model.yaml"), encoding="utf-8").read())
        temperature = found.group(1) if found else "1"  # the engine's logits are divided by it
        r = run(node, os.path.join(root, "bench", "onnx_check.mjs"), onnx, inp, logits, "2", "1",
                str(size), str(size), temperature)
        j = json.loads(r.stdout) if r.stdout.strip() else {}
        check(r.returncode == 0 and j.get("ok") is True and "probabilities_error" not in j,
              "ONNX Runtime runs %s and gives the engine's logits for a batch of 2: %s values, "
              "relative error %s (%s)" % (name, j.get("logits"), j.get("rel_error"),
                                          r.stderr.strip()[-200:]))
        # --softmax: a second output, softmax(logits / the model's temperature)
        r = run(exe, "export", "--model", model, "--format", "onnx", "--softmax", "--out", onnx)
        check(r.returncode == 0, "export --softmax %s (%s)" % (name, r.stderr.strip()))
        r = run(node, os.path.join(root, "bench", "onnx_check.mjs"), onnx, inp, logits, "2", "1",
                str(size), str(size), temperature)
        j = json.loads(r.stdout) if r.stdout.strip() else {}
        check(r.returncode == 0 and j.get("ok") is True and j.get("probabilities_error", 1) <= 1e-5,
              "--softmax: ONNX Runtime's probabilities are the softmax of the engine's logits "
              "(calibrated, temperature %s) within %s (%s)" % (temperature, j.get("probabilities_error"),
                                         r.stderr.strip()[-200:]))
finish()
