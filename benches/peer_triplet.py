#!/usr/bin/env python3
"""The triplet preset (configs/triplet-fashion-mnist.toml) in PyTorch with
pytorch-metric-learning's miners and loss, to tell whether batch-hard's collapse on
Fashion-MNIST is the method's or ours. Data, augmentation, the R1 ConvNet + MLP head and
the evaluator come from the peer's R1 reference (benches/peer/).

Per step: two augmented views of each of the batch's 256 images, both through the model;
the 512 unit embeddings, labelled by class, are mined with `BatchHardMiner` (per anchor,
the farthest positive and the nearest negative) or, with `--mining semi-hard`, FaceNet's
rule as our `loss.mining = "semi-hard"` has it (per anchor and positive, the nearest
negative farther than the positive, else the farthest negative); then
`TripletMarginLoss(margin=0.2)` on Euclidean distances between unit vectors, averaged over
all mined triplets (`MeanReducer`, as ours). SGD lr 0.06, momentum 0.9, weight decay 5e-4,
cosine decay per step. Prints the evaluation of h and the mean distance between two test
images' unit z ("z spread"; near 0 is collapse).

usage: python benches/peer_triplet.py [--mining hard|semi-hard] [--epochs 1] [--data-dir data]
"""
import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses, miners, reducers

import peer_r1
from peer_r1 import r1

MARGIN = 0.2


def semi_hard(z, y):
    """(anchor, positive, negative) index triples: for every anchor and positive, the
    nearest negative farther than the positive, else the farthest negative."""
    with torch.no_grad():
        d = torch.cdist(z, z)
        same = y.view(-1, 1) == y.view(1, -1)
        a, p = torch.nonzero(same & ~torch.eye(len(y), dtype=torch.bool), as_tuple=True)
        d_ap = d[a, p].view(-1, 1)
        d_an = d[a]
        neg = ~same[a]
        farther = neg & (d_an > d_ap)
        inf = torch.full_like(d_an, float("inf"))
        nearest_farther = torch.where(farther, d_an, inf).argmin(1)
        farthest = torch.where(neg, d_an, -inf).argmax(1)
        n = torch.where(farther.any(1), nearest_farther, farthest)
    return a, p, n


def spread(model, x, n=1000):
    with torch.no_grad():
        model.eval()
        z = F.normalize(model(x[:n])[1], dim=1)
    return torch.cdist(z, z).mean().item()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mining", choices=["hard", "semi-hard"], default="hard")
    p.add_argument("--epochs", type=int, default=1)
    a, xtr, ytr, xte, yte = peer_r1.parse_and_load(p)
    mean, std = 0.2860, 0.3530
    torch.manual_seed(r1.SEED_MODEL)
    model = r1.SimCLR()
    loss_fn = losses.TripletMarginLoss(margin=MARGIN, reducer=reducers.MeanReducer())
    miner = miners.BatchHardMiner()
    opt = peer_r1.sgd(model)
    g_aug = torch.Generator().manual_seed(r1.SEED_AUG)
    model.train()
    t0 = time.time()
    for step, total, idx in peer_r1.batches(opt, xtr.shape[0], a.epochs):
        xb = xtr[idx]
        v = torch.cat([r1.augment(xb, g_aug, mean, std), r1.augment(xb, g_aug, mean, std)])
        z = F.normalize(model(v)[1], dim=1)
        labels = ytr[idx].repeat(2)
        triples = miner(z, labels) if a.mining == "hard" else semi_hard(z, labels)
        loss = loss_fn(z, labels, triples)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % 50 == 0:
            print(f"  step {step + 1}/{total} loss {loss.item():.4f} {(step + 1) * r1.BATCH / (time.time() - t0):.0f} img/s", flush=True)
    train_s = time.time() - t0
    res = peer_r1.evaluate_h(model.encoder, xtr, ytr, xte, yte, mean, std)
    res.update({"mining": a.mining, "epochs": a.epochs, "z_spread": spread(model, (xte - mean) / std),
                "train_s": train_s, "img_per_s": total * r1.BATCH / train_s})
    print("RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    sys.exit(main())
