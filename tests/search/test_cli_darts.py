#!/usr/bin/env python3
"""`echoview search` end to end on a tiny phantom: outputs (genotype.yaml loadable by
`echoview genotype` and `echoview train --genotype`, the one-line form, alpha history, PNG plots,
cell diagrams, checkpoint), exact resume (an interrupted and resumed search writes the same bytes
as an uninterrupted one), thread-count determinism, the latency table and latency term, and bad
options.

    test_cli_darts.py ECHOVIEW_BINARY
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'common'))
from testlib import check, finish  # noqa: E402


def run(*args, expect=0):
    p = subprocess.run([exe, *args], capture_output=True, text=True)
    if p.returncode != expect:
        print("command: %s\nexit %d\nstdout: %s\nstderr: %s" % (
            " ".join(args), p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
    return p


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


exe = sys.argv[1]
tmp = tempfile.mkdtemp(prefix="evdarts")
try:
    data = os.path.join(tmp, "ph")
    p = run("phantom", "--out", data, "--size", "16", "--patients", "8", "--frames-per-patient",
            "1", "--seed", "3", "--threads", "1")
    check(p.returncode == 0, "phantom dataset")
    common = ["--data", data, "--size", "16", "--layout", "normal,reduce", "--init-channels",
              "4", "--batch", "8", "--steps-per-epoch", "2", "--val-frames", "16", "--epochs",
              "2", "--quiet", "--order", "2", "--edge-norm"]
    a, b, c = (os.path.join(tmp, n) for n in ("a", "b", "c"))
    p = run("search", *common, "--out", a, "--threads", "1")
    check(p.returncode == 0 and p.stdout.startswith("Genotype(normal=["),
          "search prints the one-line genotype")
    for f in ("genotype.yaml", "genotype.txt", "alpha_history.jsonl", "alpha_normal.png",
              "alpha_reduce.png", "cell_normal.dot", "cell_reduce.dot",
              "search_checkpoint.safetensors"):
        check(os.path.exists(os.path.join(a, f)), "writes %s" % f)
    for f in ("alpha_normal.png", "alpha_reduce.png") + (
            ("cell_normal.png", "cell_reduce.png") if shutil.which("dot") else ()):
        check(read(os.path.join(a, f), "rb")[:8] == b"\x89PNG\r\n\x1a\n", "%s is a PNG" % f)
    hist = [json.loads(l) for l in read(os.path.join(a, "alpha_history.jsonl")).splitlines()]
    check([h["epoch"] for h in hist] == [1, 2] and len(hist[-1]["alpha_normal"]) == 14 and
          all(len(r) == 8 for r in hist[-1]["alpha_reduce"]) and "beta_normal" in hist[-1],
          "alpha history: one line per epoch, 14 x 8 alphas per cell type, betas")
    w = hist[-1]["weights_normal"]
    check(all(abs(sum(r) - 1) < 1e-4 for r in w), "history weights are softmax rows")
    line = read(os.path.join(a, "genotype.txt")).strip()
    check(line == p.stdout.strip() == hist[-1]["genotype"], "genotype.txt = stdout = history")
    g = run("genotype", os.path.join(a, "genotype.yaml"), "--line")
    check(g.returncode == 0 and g.stdout.strip() == line,
          "genotype.yaml loads and converts to the same one-line form")
    t = run("train", "--genotype", os.path.join(a, "genotype.yaml"), "--benchmark", "1",
            "--size", "16", "--layout", "normal,reduce", "--init-channels", "4", "--batch", "4",
            "--threads", "1")
    check(t.returncode == 0, "echoview train --genotype DIR/genotype.yaml accepts it")

    # exact resume: stop after epoch 1, resume; same bytes as the uninterrupted run
    p = run("search", *common, "--out", b, "--threads", "1", "--stop-after", "1")
    check(p.returncode == 0 and len(read(os.path.join(b, "alpha_history.jsonl")).splitlines()) == 1,
          "--stop-after 1 stops after one epoch")
    p = run("search", *common, "--out", b, "--threads", "1", "--resume")
    check(p.returncode == 0, "--resume continues")
    check(read(os.path.join(a, "search_checkpoint.safetensors"), "rb") ==
          read(os.path.join(b, "search_checkpoint.safetensors"), "rb"),
          "interrupted + resumed search: checkpoint byte-identical to the uninterrupted one")
    ha = [json.loads(l) for l in read(os.path.join(a, "alpha_history.jsonl")).splitlines()]
    hb = [json.loads(l) for l in read(os.path.join(b, "alpha_history.jsonl")).splitlines()]
    check([h["alpha_normal"] for h in ha] == [h["alpha_normal"] for h in hb] and
          read(os.path.join(b, "genotype.txt")) == read(os.path.join(a, "genotype.txt")),
          "resumed history and genotype equal the uninterrupted run's")
    p = run("search", *common, "--out", c, "--threads", "2")
    check(p.returncode == 0 and read(os.path.join(a, "search_checkpoint.safetensors"), "rb") ==
          read(os.path.join(c, "search_checkpoint.safetensors"), "rb"),
          "2 threads: byte-identical checkpoint to 1 thread")

    # bad options and a mismatched resume
    p = run("search", *common, "--out", b, "--resume", "--init-channels", "6", expect=1)
    check(p.returncode == 1 and "other options" in p.stderr,
          "resume with other options is refused: %s" % p.stderr.strip()[:120])
    p = run("search", "--data", data, "--out", c, "--order", "3", expect=2)
    check(p.returncode == 2, "--order 3 is a usage error")
    p = run("search", "--data", os.path.join(tmp, "missing"), "--out", c, "--size", "16",
            expect=1)
    check(p.returncode == 1 and "missing" in p.stderr, "a missing dataset fails with its name")
    p = run("search", *common, "--out", c, "--latency-weight", "1", expect=2)
    check(p.returncode == 2 and "--latency FILE" in p.stderr, "--latency-weight needs a table")

    # latency table and the latency-aware term
    lat = os.path.join(tmp, "latency.json")
    p = run("search", "--latency-table", lat, "--size", "16", "--layout", "normal,reduce",
            "--init-channels", "4", "--threads", "1")
    j = json.loads(read(lat)) if p.returncode == 0 else {}
    ms = j.get("latency_ms", {})
    check(len(ms) == 8 and ms.get("none") == 0 and min(ms.values()) == 0 and
          all(v >= 0 for v in ms.values()) and j.get("backend") == "cpu",
          "latency table: 8 ops, none 0, the cheapest 0 (%s)" % ms)
    d = os.path.join(tmp, "d")
    p = run("search", *common, "--out", d, "--threads", "1", "--epochs", "1", "--latency", lat,
            "--latency-weight", "0.5")
    check(p.returncode == 0, "search with the latency term runs")
    bad = os.path.join(tmp, "bad.json")
    with open(bad, "w") as f:
        f.write('{"latency_ms": {"none": "fast"}}')
    p = run("search", *common, "--out", d, "--latency", bad, "--latency-weight", "1", expect=1)
    check(p.returncode == 1 and "latency_ms" in p.stderr, "a malformed latency table is refused")
finally:
    shutil.rmtree(tmp, ignore_errors=True)

finish()
