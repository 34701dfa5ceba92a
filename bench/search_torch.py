#!/usr/bin/python3
"""PyTorch CPU peer of `echoview search --benchmark`: the reference DARTS search network
(quark0/darts cnn/model_search.py: MixedOp = sum softmax(alpha) * op over the 8 primitives,
BN affine=False, pooling followed by BN, steps 4, multiplier 4, stem multiplier 3) and its
Architect (architect.py: first order, or the unrolled second order with the finite-difference
Hessian-vector product), built on the ops of tests/fixtures/gen_golden.py. For
bench/search_vs_torch.sh.

    /usr/bin/python3 bench/search_torch.py --size 32 --init-channels 8 --layers 5 --batch 32 \
        --threads 2 --steps 3 --order 1

One search step = one architecture step on a validation batch + one SGD weight step (grad clip
5) on a training batch, as train_search.py does. Prints one JSON line like echoview's.
"""
import argparse
import copy
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
import gen_golden as G  # noqa: E402

PRIMITIVES = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
              "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"]


class MixedOp(nn.Module):
    def __init__(self, c, stride):
        super().__init__()
        self._ops = nn.ModuleList()
        for p in PRIMITIVES:
            op = G.OPS[p](c, stride, False)
            if "pool" in p:
                op = nn.Sequential(op, nn.BatchNorm2d(c, affine=False))
            self._ops.append(op)

    def forward(self, x, weights):
        return sum(w * op(x) for w, op in zip(weights, self._ops))


class SearchCell(nn.Module):
    def __init__(self, steps, multiplier, c_pp, c_p, c, reduction, reduction_prev):
        super().__init__()
        self.reduction = reduction
        if reduction_prev:
            self.preprocess0 = G.FactorizedReduce(c_pp, c, affine=False)
        else:
            self.preprocess0 = G.ReLUConvBN(c_pp, c, 1, 1, 0, affine=False)
        self.preprocess1 = G.ReLUConvBN(c_p, c, 1, 1, 0, affine=False)
        self._steps, self._multiplier = steps, multiplier
        self._ops = nn.ModuleList()
        for i in range(steps):
            for j in range(2 + i):
                self._ops.append(MixedOp(c, 2 if reduction and j < 2 else 1))

    def forward(self, s0, s1, weights):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(self._steps):
            s = sum(self._ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-self._multiplier:], dim=1)


class SearchNetwork(nn.Module):
    def __init__(self, c, classes, layout, in_channels=1, steps=4, multiplier=4, stem_mult=3):
        super().__init__()
        c_curr = stem_mult * c
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, c
        self.cells = nn.ModuleList()
        reduction_prev = False
        for kind in layout:
            reduction = kind == "reduce"
            if reduction:
                c_curr *= 2
            self.cells.append(SearchCell(steps, multiplier, c_pp, c_p, c_curr, reduction,
                                         reduction_prev))
            reduction_prev = reduction
            c_pp, c_p = c_p, multiplier * c_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, classes)
        k = sum(2 + i for i in range(steps))
        # plain tensors, not Parameters: the weight optimiser never sees them (as the reference)
        self.alphas_normal = (1e-3 * torch.randn(k, len(PRIMITIVES))).requires_grad_(True)
        self.alphas_reduce = (1e-3 * torch.randn(k, len(PRIMITIVES))).requires_grad_(True)

    def arch_parameters(self):
        return [self.alphas_normal, self.alphas_reduce]

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            a = self.alphas_reduce if cell.reduction else self.alphas_normal
            s0, s1 = s1, cell(s0, s1, F.softmax(a, dim=-1))
        out = self.global_pooling(s1)
        return self.classifier(out.view(out.size(0), -1))

    def loss(self, x, y):
        return F.cross_entropy(self(x), y)


def concat(xs):
    return torch.cat([x.reshape(-1) for x in xs])


class Architect:
    """architect.py of the reference, same defaults."""

    def __init__(self, model, momentum=0.9, wd=3e-4, arch_lr=3e-4, arch_wd=1e-3):
        self.model, self.momentum, self.wd = model, momentum, wd
        self.opt = torch.optim.Adam(model.arch_parameters(), lr=arch_lr, betas=(0.5, 0.999),
                                    weight_decay=arch_wd)

    def step(self, xt, yt, xv, yv, eta, net_opt, unrolled):
        self.opt.zero_grad()
        if unrolled:
            self._backward_step_unrolled(xt, yt, xv, yv, eta, net_opt)
        else:
            self.model.loss(xv, yv).backward()
        self.opt.step()

    def _unrolled_model(self, xt, yt, eta, net_opt):
        loss = self.model.loss(xt, yt)
        params = list(self.model.parameters())
        theta = concat(params).data
        try:
            moment = concat(net_opt.state[v]["momentum_buffer"] for v in params).mul_(self.momentum)
        except KeyError:
            moment = torch.zeros_like(theta)
        dtheta = concat(torch.autograd.grad(loss, params)).data + self.wd * theta
        new = copy.deepcopy(self.model)
        flat = theta - eta * (moment + dtheta)
        off = 0
        for p in new.parameters():
            n = p.numel()
            p.data.copy_(flat[off:off + n].view_as(p))
            off += n
        for a, b in zip(new.arch_parameters(), self.model.arch_parameters()):
            a.data.copy_(b.data)
        return new

    def _backward_step_unrolled(self, xt, yt, xv, yv, eta, net_opt):
        unrolled = self._unrolled_model(xt, yt, eta, net_opt)
        unrolled.loss(xv, yv).backward()
        dalpha = [v.grad for v in unrolled.arch_parameters()]
        vector = [v.grad.data for v in unrolled.parameters()]
        r = 1e-2 / concat(vector).norm()
        params = list(self.model.parameters())
        for p, v in zip(params, vector):
            p.data.add_(v, alpha=r)
        gp = torch.autograd.grad(self.model.loss(xt, yt), self.model.arch_parameters())
        for p, v in zip(params, vector):
            p.data.sub_(v, alpha=2 * r)
        gn = torch.autograd.grad(self.model.loss(xt, yt), self.model.arch_parameters())
        for p, v in zip(params, vector):
            p.data.add_(v, alpha=r)
        for a, g, p_, n_ in zip(self.model.arch_parameters(), dalpha, gp, gn):
            a.grad = (g - eta * (p_ - n_) / (2 * r)).data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--init-channels", type=int, default=8)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--order", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(2)
    model = SearchNetwork(a.init_channels, 14, G.layout_from_layers(a.layers))
    model.train()
    lr = 0.025
    net_opt = torch.optim.SGD(model.parameters(), lr, momentum=0.9, weight_decay=3e-4)
    arch = Architect(model)
    xt, xv = torch.rand(a.batch, 1, a.size, a.size), torch.rand(a.batch, 1, a.size, a.size)
    yt, yv = torch.arange(a.batch) % 14, (torch.arange(a.batch) + 1) % 14
    t0 = 0.0
    for i in range(a.warmup + a.steps):
        if i == a.warmup:
            t0 = time.perf_counter()
        arch.step(xt, yt, xv, yv, lr, net_opt, a.order == 2)
        net_opt.zero_grad()
        loss = model.loss(xt, yt)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        net_opt.step()
    t = (time.perf_counter() - t0) / a.steps
    print(json.dumps({"peer": "pytorch %s" % torch.__version__, "size": a.size,
                      "init_channels": a.init_channels, "cells": a.layers, "batch": a.batch,
                      "order": a.order, "threads": a.threads, "seconds_per_step": round(t, 6),
                      "images_per_second": round(a.batch / t, 3)}))


if __name__ == "__main__":
    main()
