#!/usr/bin/env python3
"""PyTorch eager peer for bench/cuda_bench.c: the same networks (the reference DARTS evaluation
network of tests/fixtures/gen_golden.py: DARTS_V2 and PAPER128, layout [normal, reduce, normal,
reduce], init channels 16, 1 input channel, 14 classes), eval mode, on the same GPU, measured the
same way: batch-1 latency from a host tensor to host logits (median and p99), and throughput at
batch 64 and 256 (cudnn.benchmark on).

    python3 bench/cuda_bench.py [--runs N] [--sizes 32,64,96,128] [--csv FILE]

Exits 77 when torch or a CUDA device is missing.
"""
import argparse
import os
import sys
import time

try:
    import torch
except ImportError:
    print("cuda_bench.py: torch is not importable; skipping the PyTorch peer")
    sys.exit(77)

if not torch.cuda.is_available():
    print("cuda_bench.py: torch sees no CUDA device; skipping the PyTorch peer")
    sys.exit(77)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
import gen_golden  # noqa: E402  (the reference network code)

LAYOUT = ["normal", "reduce", "normal", "reduce"]


def latency(model, x_host, runs):
    with torch.no_grad():
        for _ in range(50):
            model(x_host.cuda(non_blocking=True)).cpu()
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            model(x_host.cuda(non_blocking=True)).cpu()
            times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]


def throughput(model, x_host, batch):
    with torch.no_grad():
        for _ in range(5):
            model(x_host.cuda(non_blocking=True)).cpu()
        runs, t0 = 0, time.perf_counter()
        while True:
            model(x_host.cuda(non_blocking=True)).cpu()
            runs += 1
            dt = time.perf_counter() - t0
            if dt >= 1.0 or runs >= 10000:
                break
    return runs * batch / dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--sizes", default="32,64,96,128")
    ap.add_argument("--csv")
    args = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    # fp32 stays fp32, as in the engine (no TF32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    sizes = [int(s) for s in args.sizes.split(",")]
    dev = torch.cuda.get_device_name(0)
    print(f"# torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, {dev}")
    print(f"{'network':<9} {'px':>4} {'prec':>4} | {'b1 eager ms':<15} | {'fps b64':>9} {'fps b256':>9}")
    print(f"{'':<9} {'':>4} {'':>4} | {'p50 / p99':<15} |")
    rows = []
    for name, key in (("darts_v2", "DARTS_V2"), ("paper128", "PAPER128")):
        for size in sizes:
            for half in (False, True):
                torch.manual_seed(7)
                model = gen_golden.Network(gen_golden.GENOTYPES[key], 16, LAYOUT, 1, 14).cuda().eval()
                dtype = torch.float16 if half else torch.float32
                model = model.to(dtype)
                x1 = torch.rand(1, 1, size, size, dtype=dtype).pin_memory()
                p50, p99 = latency(model, x1, args.runs)
                fps = []
                for batch in (64, 256):
                    xb = torch.rand(batch, 1, size, size, dtype=dtype).pin_memory()
                    fps.append(throughput(model, xb, batch))
                prec = "fp16" if half else "fp32"
                print(f"{name:<9} {size:>4} {prec:>4} | {p50:6.3f} / {p99:6.3f} | {fps[0]:9.0f} {fps[1]:9.0f}",
                      flush=True)
                rows.append(f"{name},{size},{prec},{p50:.4f},{p99:.4f},{fps[0]:.1f},{fps[1]:.1f}")
                del model
                torch.cuda.empty_cache()
    if args.csv:
        with open(args.csv, "w") as f:
            f.write("network,size,precision,lat_eager_p50_ms,lat_eager_p99_ms,fps_b64,fps_b256\n")
            f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
