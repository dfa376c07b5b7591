#!/usr/bin/env python3
"""Replays the InstDisc steps that `examples/instdisc_trace.rs` traced, in PyTorch, and
compares: the peer's model (benches/peer/simclr_r1_reference.py with a linear head) loaded
with our initial parameters, our views, bank and key indices, the NCE of
benches/peer_moco_instdisc.py, torch.optim.SGD on the same cosine schedule. Prints each
step's loss on both sides and the largest relative difference of every final parameter;
with --eval also the peer's kNN and linear probe (recipe R1's evaluator) of both final
encoders, ours with its own running statistics.

usage: peer_instdisc_trace.py TRACE_DIR [--eval] [--peer-dir benches/peer] [--data-dir data]
"""
import argparse
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ARGS = argparse.ArgumentParser()
ARGS.add_argument("trace")
ARGS.add_argument("--eval", action="store_true")
ARGS.add_argument("--peer-dir", default=os.path.join(HERE, "peer"))
ARGS.add_argument("--data-dir", default=os.path.join(HERE, "..", "data"))
A = ARGS.parse_args()
sys.path.insert(0, A.peer_dir)
sys.path.insert(0, HERE)
import simclr_r1_reference as r1  # noqa: E402
from peer_moco_instdisc import instdisc_loss, update_bank  # noqa: E402

LR, MOMENTUM, WD = 0.06, 0.9, 5e-4


def ours_to_torch(model, stats=False):
    """(our parameter file name, torch tensor, transpose?) for every trained parameter, and
    with `stats` the batch-norm running statistics."""
    pairs = []
    for b in range(4):
        conv, bn = model.encoder.features[3 * b], model.encoder.features[3 * b + 1]
        p = f"encoder.ConvNet.blocks.{b}"
        pairs += [(f"{p}.conv.weight", conv.weight, False), (f"{p}.bn.gamma", bn.weight, False),
                  (f"{p}.bn.beta", bn.bias, False)]
        if stats:
            pairs += [(f"{p}.bn.running_mean", bn.running_mean, False),
                      (f"{p}.bn.running_var", bn.running_var, False)]
    pairs += [("head.out.weight", model.head.weight, True), ("head.out.bias", model.head.bias, False)]
    return pairs


def load(d, name, transpose):
    a = torch.from_numpy(np.load(os.path.join(d, name + ".npy")))
    return a.t().contiguous() if transpose else a


def peer_model(d):
    """The peer's model (linear head) holding our parameters and running statistics from
    the dump folder `d`."""
    model = r1.SimCLR()
    model.head = torch.nn.Linear(256, 128)
    with torch.no_grad():
        for name, p, tr in ours_to_torch(model, stats=True):
            p.copy_(load(d, name, tr))
    return model


def evaluate(models):
    """The peer's (kNN, linear) top-1 of each model's encoder; the data is read once."""
    r1.DATA_DIR = A.data_dir
    xtr, ytr, xte, yte = r1.load_dataset("fmnist")
    mean, std = 0.2860, 0.3530
    ntr, nte = (xtr - mean) / std, (xte - mean) / std
    out = []
    for m in models:
        res = r1.evaluate(r1.extract(m.encoder, ntr), ytr, r1.extract(m.encoder, nte), yte)
        out.append((res["knn_top1"], res["linear_top1"]))
    return out


def main():
    trace = A.trace
    torch.set_num_threads(2)
    model = peer_model(os.path.join(trace, "init"))
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)
    bank = torch.from_numpy(np.load(os.path.join(trace, "bank.npy")))
    ours = np.load(os.path.join(trace, "losses.npy"))
    print("step  ours       pytorch    diff")
    total = len(ours)
    for step, ours_loss in enumerate(ours):
        for pg in opt.param_groups:
            pg["lr"] = LR * 0.5 * (1.0 + math.cos(math.pi * step / total))
        x = torch.from_numpy(np.load(os.path.join(trace, f"x{step}.npy")))
        idx = torch.from_numpy(np.load(os.path.join(trace, f"inst{step}.npy")))
        keys = torch.from_numpy(np.load(os.path.join(trace, f"keys{step}.npy")))
        loss, zq = instdisc_loss(model(x)[1], bank, idx, keys)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        update_bank(bank, idx, zq)
        print(f"{step:4d}  {ours_loss:.6f}  {loss.item():.6f}  {ours_loss - loss.item():+.2e}")
    print("final parameter                      max |ours - pytorch| / max |pytorch|")
    for name, p, tr in ours_to_torch(model):
        a = load(os.path.join(trace, "final"), name, tr)
        rel = ((a - p.detach()).abs().max() / p.detach().abs().max()).item()
        print(f"{name:36s} {rel:.2e}")
    if A.eval:
        replayed, ours = evaluate([model, peer_model(os.path.join(trace, "final"))])
        print("replayed in PyTorch: kNN %.4f linear %.4f" % replayed)
        print("ours:                kNN %.4f linear %.4f" % ours)


if __name__ == "__main__":
    sys.exit(main())
