#!/usr/bin/env python3
"""test_cli.py ECHOVIEW SOURCE_ROOT: the `echoview` command line contract (ARCHITECTURE.md):
inspect's counts and JSON, classify's one JSON object per file (and its answers to bad files),
bench's JSON fields, genotype conversion, and exit codes (0 ok, 1 failed work, 2 usage).
Standard library only, so CI needs no extra Python packages."""
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'common'))
from testlib import check, finish  # noqa: E402

ECHOVIEW, ROOT = sys.argv[1], sys.argv[2]
FIXTURE = os.path.join(ROOT, "tests/fixtures/golden/darts_v2_nrnr_g1")


def run(*args):
    p = subprocess.run([ECHOVIEW, *args], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def write_pgm(path, w, h, pixels, maxval=255):
    with open(path, "wb") as f:
        f.write(b"P5\n%d %d\n%d\n" % (w, h, maxval))
        if maxval > 255:
            f.write(b"".join(struct.pack(">H", p) for p in pixels))
        else:
            f.write(bytes(pixels))


def write_png_rgb(path, w, h, pixels):
    raw = b"".join(b"\x00" + bytes(pixels[y * w * 3:(y + 1) * w * 3]) for y in range(h))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


tmp = tempfile.mkdtemp(prefix="ev_cli_")

# inspect
rc, out, err = run("inspect", "--model", FIXTURE, "--json")
info = json.loads(out) if rc == 0 else {}
check(rc == 0 and info.get("params") == 5246 and info.get("macs") == 442752,
      f"inspect --json: params {info.get('params')} (PyTorch count 5246), macs {info.get('macs')}")
check([c["type"] for c in info.get("cells", [])] == ["normal", "reduce", "normal", "reduce"]
      and [c["channels"] for c in info["cells"]] == [4, 8, 8, 16]
      and [c["height"] for c in info["cells"]] == [16, 8, 8, 4],
      "inspect --json: layout, channels per cell and feature-map sizes")
rc, out, err = run("inspect", "--model", os.path.join(FIXTURE, "model.yaml"))
check(rc == 0 and "params       5246" in out, "inspect takes model.yaml and prints a summary")
rc, out, err = run("inspect", "--model", "/nonexistent")
check(rc == 1 and "/nonexistent" in err, f"inspect on a missing model: exit 1, names the path ({err.strip()})")
rc, out, err = run("inspect")
check(rc == 2 and "--model" in err, "inspect without --model: usage error")

# classify: exact-size gray PGM, 16-bit PGM, larger RGB PNG, a corrupt file, a missing file
g8 = os.path.join(tmp, "frame8.pgm")
write_pgm(g8, 16, 16, [(x * 16 + y * 7) % 256 for y in range(16) for x in range(16)])
g16 = os.path.join(tmp, "frame16.pgm")
write_pgm(g16, 16, 16, [((x * 16 + y * 7) % 256) * 257 for y in range(16) for x in range(16)], 65535)
rgb = os.path.join(tmp, "frame.png")
write_png_rgb(rgb, 32, 32, [((x // 2) * 16 + (y // 2) * 7) % 256 for y in range(32) for x in range(32) for _ in range(3)])
bad = os.path.join(tmp, "corrupt.png")
with open(bad, "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n garbage")
rc, out, err = run("classify", "--model", FIXTURE, "--backend", "reference", g8, g16, rgb, bad, "/nonexistent.pgm")
lines = [json.loads(l) for l in out.splitlines()]
check(rc == 1 and len(lines) == 5, f"classify: one JSON object per file, exit 1 with bad files (rc {rc}, {len(lines)} lines)")
good = lines[:3]
check(all(set(o) == {"file", "label", "label_id", "confidence", "probabilities"} for o in good),
      "classify: fields file, label, label_id, confidence, probabilities")
check(all(abs(sum(o["probabilities"].values()) - 1) < 1e-4 and len(o["probabilities"]) == 14
          and o["probabilities"][o["label"]] == o["confidence"]
          and o["confidence"] == max(o["probabilities"].values()) for o in good),
      "classify: probabilities over the 14 views sum to 1, label is the argmax")
check(good[0]["label"] == good[1]["label"]
      and all(abs(good[0]["probabilities"][k] - good[1]["probabilities"][k]) < 1e-5 for k in good[0]["probabilities"]),
      "classify: 8-bit and 16-bit versions of the same frame agree")
check(good[0]["label"] == good[2]["label"]
      and all(abs(good[0]["probabilities"][k] - good[2]["probabilities"][k]) < 1e-5 for k in good[0]["probabilities"]),
      "classify: a 2x larger RGB PNG of the same frame (area resize, luma) agrees")
check("error" in lines[3] and "corrupt.png" in lines[3]["error"], f"classify: corrupt PNG named in its error ({lines[3].get('error')})")
check("error" in lines[4] and "No such file" in lines[4]["error"], f"classify: missing file ({lines[4].get('error')})")
rc, out, err = run("classify", "--model", FIXTURE, "--roi", "0,0,8,8", g8)
o = json.loads(out) if rc == 0 else {}
check(rc == 0 and o.get("label") is not None, "classify --roi crops before resizing")
rc, out, err = run("classify", "--model", FIXTURE, "--roi", "10,10,8,8", g8)
check(rc == 1 and "roi" in out.lower(), f"classify --roi outside the frame is an error ({out.strip()[:120]})")
rc, out, err = run("classify", "--model", FIXTURE, "--backend", "warp", g8)
check(rc == 2 and "unknown backend 'warp'" in err, "classify: unknown backend is a usage error")
rc, out, err = run("classify", "--model", FIXTURE)
check(rc == 2 and "no input files" in err, "classify without files: usage error")

# classify --auto-roi checks the screen type first: phantom v2 M-mode/PW/CW/TDI screens have no
# fan and are answered unknown by this 14-class bundle (no `other` class), 2D frames keep the
# network's answer; --no-screen-check leaves the check out
ph = os.path.join(tmp, "ph")
rc, out, err = run("phantom", "--out", ph, "--patients", "2", "--frames-per-patient", "1",
                   "--seed", "31", "--full-frame", "640x480", "--phantom-version", "2",
                   "--views", "A4CH-LV,PLAX-full,other", "--threads", "1")
check(rc == 0, f"phantom v2 screens for the screen check ({err.strip()[:200]})")
frames = []
if rc == 0:
    with open(os.path.join(ph, "manifest.csv")) as f:
        rows = [line.strip().split(",") for line in f.readlines()[1:]]
    frames = [(os.path.join(ph, r[0]), r[1]) for r in rows]
rc, out, err = run("classify", "--model", FIXTURE, "--auto-roi", *[f for f, _ in frames])
res = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
rc2, out2, err2 = run("classify", "--model", FIXTURE, "--auto-roi", "--no-screen-check",
                      *[f for f, _ in frames])
res2 = [json.loads(line) for line in out2.splitlines() if line.startswith("{")]
check(rc == 0 and rc2 == 0 and len(res) == len(frames) == 6 and len(res2) == 6,
      f"classify --auto-roi on the phantom screens (rc {rc}, {len(res)} results)")
for (f, label), o, o2 in zip(frames, res, res2):
    s = o.get("screen", {})
    if label == "other":
        check(s.get("type") == "not-2d" and o["label"] == "unknown" and o["label_id"] == -1
              and o["confidence"] == 0 and sum(o["probabilities"].values()) == 0
              and o.get("best_guess") == o2["label"] and s.get("reason"),
              f"classify: a non-2D screen is unknown with the screen's reason ({f}: {o})")
    else:
        check(s.get("type") == "2d" and o["label"] == o2["label"]
              and o["probabilities"] == o2["probabilities"],
              f"classify: a 2D frame keeps the network's answer ({f}: {s})")
    check("screen" not in o2, "classify --no-screen-check reports no screen")
rc, out, err = run("classify", "--model", FIXTURE, "--no-screen-check", g8)
check(rc == 2 and "--auto-roi" in err, "classify --no-screen-check without --auto-roi: usage error")

# bench
rc, out, err = run("bench", "--model", FIXTURE, "--backend", "reference", "--iterations", "20", "--warmup", "2")
b = json.loads(out) if rc == 0 else {}
check(rc == 0 and b.get("backend") == "reference" and b.get("threads") == 1 and b.get("params") == 5246
      and set(b.get("latency_ms", {})) >= {"mean", "p50", "p99"} and b["fps"] > 0
      and b["latency_ms"]["p50"] <= b["latency_ms"]["p99"],
      "bench: JSON with params, macs, backend, threads, latency_ms {mean,p50,p99}, fps")
rc, out, err = run("bench", "--model", FIXTURE, "--iterations", "0")
check(rc == 2 and "--iterations" in err, "bench --iterations 0: usage error")

# genotype
rc, out, err = run("genotype", os.path.join(ROOT, "models/genotypes/DARTS_V2.yaml"), "--line")
check(rc == 0 and out.startswith("Genotype(normal=[('sep_conv_3x3', 0)"), "genotype: YAML to the one-line form")
rc, out, err = run("genotype", "--string", "Genotype(normal=[('conv_9x9', 0)])")
check(rc == 1 and "unknown op 'conv_9x9'" in err, "genotype: unknown op reported")
# the random-search baseline: deterministic per seed, the DARTS shape, never `none`
import ast
rc, out1, err = run("genotype", "--random", "7", "--line")
rc2, out2, _ = run("genotype", "--random", "7", "--line")
rc3, out3, _ = run("genotype", "--random", "8", "--line")
check(rc == 0 and rc2 == 0 and rc3 == 0 and out1 == out2 and out1 != out3,
      "genotype --random: same seed same genotype, another seed another")
body = out1.strip()[len("Genotype("):-1]
fields = dict((k, ast.literal_eval(v)) for k, v in
              (part.split("=", 1) for part in body.replace("], ", "]|").split("|")))
ok = True
for cell in ("normal", "reduce"):
    edges = fields[cell]
    ok &= len(edges) == 8 and fields[cell + "_concat"] == [2, 3, 4, 5]
    for node in range(4):
        (op_a, in_a), (op_b, in_b) = edges[2 * node], edges[2 * node + 1]
        ok &= in_a != in_b and max(in_a, in_b) < node + 2 and "none" not in (op_a, op_b)
check(ok, "genotype --random: 4 nodes, 2 distinct earlier predecessors each, no none: " + out1.strip())
rc, out, err = run("genotype", "--random", "-3")
check(rc == 2 and "non-negative integer seed" in err, "genotype --random: a bad seed is a usage error")

# every command's options go through the one table parser: --help on stdout with exit 0, an
# unknown option and a missing value are usage errors (exit 2) that name the option and print
# the usage on stderr
rc, out, err = run("--help")
commands = ["inspect", "classify", "bench", "genotype", "phantom", "train", "eval", "experiment",
            "search"] + (["dicom2rtp"] if "dicom2rtp" in out else []) + (
            ["fleet map"] if "\n  fleet " in out else [])
value_option = {"inspect": "--model", "classify": "--model", "bench": "--iterations",
                "genotype": "--string", "phantom": "--out", "train": "--data", "eval": "--split",
                "experiment": "--data", "search": "--seed", "dicom2rtp": "--port",
                "fleet map": "--config"}
for cmd in commands:
    rc, out, err = run(*cmd.split(), "--help")
    check(rc == 0 and out.startswith(f"usage: echoview {cmd} ") and not err,
          f"{cmd} --help: usage on stdout, exit 0")
    rc, out, err = run(*cmd.split(), "--frobnicate")
    check(rc == 2 and err.startswith(f"echoview {cmd}: unknown option '--frobnicate'\n")
          and f"usage: echoview {cmd} " in err and not out,
          f"{cmd}: an unknown option is a usage error with the usage ({err.splitlines()[0] if err else ''})")
    opt = value_option[cmd]
    rc, out, err = run(*cmd.split(), opt)
    check(rc == 2 and err.startswith(f"echoview {cmd}: {opt} needs a value\n")
          and f"usage: echoview {cmd} " in err,
          f"{cmd}: {opt} without its value is a usage error ({err.splitlines()[0] if err else ''})")
rc, out, err = run("eval", "--split", "holdout")
check(rc == 2 and "echoview eval: --split test, val, train or all, got 'holdout'" in err,
      "eval --split: the choices are listed")
rc, out, err = run("train", "--seed", "x7")
check(rc == 2 and "--seed wants a non-negative integer seed, not 'x7'" in err,
      "train --seed: a bad seed is a usage error")
# required options: all of them named, whichever is missing, then the usage (exit 2)
for args, want in ((("inspect",), "echoview inspect: --model is required\n"),
                   (("classify", "a.png"), "echoview classify: --model is required\n"),
                   (("eval", "--model", FIXTURE), "echoview eval: --model and --data are required\n"),
                   (("adapt", "--data", tmp, "--out", tmp),
                    "echoview adapt: --model, --data and --out are required\n"),
                   (("export", "--model", FIXTURE, "--format", "onnx"),
                    "echoview export: --model, --format and --out are required\n")):
    rc, out, err = run(*args)
    check(rc == 2 and err.startswith(want) and f"usage: echoview {args[0]} " in err,
          f"{args[0]} without a required option: {want.strip()}")
rc, out, err = run("genotype", os.path.join(ROOT, "models/genotypes/DARTS_V2.yaml"), "extra.yaml")
check(rc == 2 and "unexpected argument 'extra.yaml'" in err, "genotype: one FILE only")

# command dispatch
rc, out, err = run("frobnicate")
check(rc == 2 and "unknown command" in err, "unknown subcommand: exit 2")
rc, out, err = run("--help")
check(rc == 0 and "classify" in out and "inspect" in out and "bench" in out, "--help lists the subcommands")

finish()
