#!/usr/bin/python3
"""torch_bench.py: PyTorch eager peer for bench/run_bench.sh. Builds the reference DARTS
evaluation network of tests/fixtures/gen_golden.py, loads an echoview bundle's
weights.safetensors, checks its logits against echoview's for the same input, and times eval
forward at batch 1. Prints one JSON line (latency_ms mean/p50/p99/min, peak_rss_kb, rel_error).

usage: torch_bench.py BUNDLE_DIR GENOTYPE_NAME THREADS ITERATIONS [INPUT.f32 ECHOVIEW_LOGITS.f32]
"""
import json
import os
import resource
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "fixtures"))
import gen_golden  # noqa: E402  (the reference network, shared with the golden fixtures)


def main():
    bundle, genotype, threads, iters = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    text = open(os.path.join(bundle, "model.yaml")).read()
    field = lambda key: text.split(key + ":")[1].split("\n")[0].strip()
    init_channels = int(field("init_channels"))
    layout = [s.strip() for s in field("layout").strip("[]").split(",")]
    inp = field("input")
    size = int(inp.split("width:")[1].split(",")[0])
    channels = int(inp.split("channels:")[1].split("}")[0])
    net = gen_golden.Network(gen_golden.GENOTYPES[genotype], init_channels, layout, channels, 14)
    state = gen_golden.read_safetensors(os.path.join(bundle, "weights.safetensors"))
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit(f"weights do not match: missing {missing} unexpected {unexpected}")
    net.eval()
    x = torch.rand(1, channels, size, size)
    rel = None
    if len(sys.argv) > 6:
        import array
        a = array.array("f")
        a.frombytes(open(sys.argv[5], "rb").read())
        x = torch.tensor(a.tolist()).reshape(1, channels, size, size)
        b = array.array("f")
        b.frombytes(open(sys.argv[6], "rb").read())
        want = torch.tensor(b.tolist())
        with torch.no_grad():
            got = net(x).reshape(-1)
        rel = float((got - want).abs().max() / want.abs().max())
    times = []
    with torch.no_grad():
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 0.3:
            net(x)
        t0 = time.perf_counter()
        for _ in range(iters):  # at most ITERATIONS, at most ~5 s (eager is slow), at least 3
            a = time.perf_counter()
            net(x)
            times.append((time.perf_counter() - a) * 1e3)
            if len(times) >= 3 and time.perf_counter() - t0 > 5.0:
                break
    times.sort()
    pick = lambda q: times[round((len(times) - 1) * q)]
    print(json.dumps({"model": bundle, "backend": "pytorch-eager", "version": torch.__version__,
                      "threads": threads, "iterations": len(times),
                      "latency_ms": {"mean": sum(times) / len(times), "p50": pick(0.5),
                                     "p99": pick(0.99), "min": times[0]},
                      "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      "rel_error": rel}))


if __name__ == "__main__":
    main()
