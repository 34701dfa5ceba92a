#!/usr/bin/python3
"""PyTorch CPU training throughput of the same DARTS network echoview trains (the reference
NetworkCIFAR of tests/fixtures/gen_golden.py), for bench/train_vs_torch.sh.

    /usr/bin/python3 bench/train_torch.py --size 96 --init-channels 16 --batch 64 --threads 2 --steps 5

Prints one JSON line like `echoview train --benchmark`: Adam, cross-entropy, batch-norm in
training mode, random frames, `steps` timed steps after 2 warm-up steps.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
import gen_golden  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--size", type=int, default=96)
ap.add_argument("--init-channels", type=int, default=16)
ap.add_argument("--layout", default="normal,reduce,normal,reduce")
ap.add_argument("--batch", type=int, default=64)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--steps", type=int, default=5)
ap.add_argument("--genotype", default="DARTS_V2")
a = ap.parse_args()

torch.set_num_threads(a.threads)
torch.manual_seed(1)
layout = a.layout.split(",")
model = gen_golden.Network(gen_golden.GENOTYPES[a.genotype], a.init_channels, layout, 1, 14)
model.train()
opt = torch.optim.Adam(model.parameters(), lr=1e-4)
x = torch.rand(a.batch, 1, a.size, a.size)
y = torch.arange(a.batch) % 14


def step():
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()


for _ in range(2):
    step()
t0 = time.perf_counter()
for _ in range(a.steps):
    step()
dt = (time.perf_counter() - t0) / a.steps
print(json.dumps({"engine": "pytorch %s" % torch.__version__, "size": a.size,
                  "init_channels": a.init_channels, "cells": len(layout), "batch": a.batch,
                  "threads": a.threads, "steps": a.steps, "seconds_per_step": round(dt, 4),
                  "frames_per_second": round(a.batch / dt, 1)}))
