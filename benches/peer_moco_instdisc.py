#!/usr/bin/env python3
"""MoCo v2 and InstDisc in PyTorch, the same recipes as configs/moco-v2-fashion-mnist.toml
and configs/instdisc-fashion-mnist.toml, for accuracy parity. Data, augmentation, the R1
ConvNet and the evaluator come from the peer's R1 reference (benches/peer/).

MoCo v2: queries from view 0 through the online encoder + MLP head (both views in one
forward), keys from view 1 through an EMA copy (m = 0.99, parameters and BN buffers),
InfoNCE with cosine scores at temperature 0.2 against the batch's keys and a FIFO queue
of 4096 earlier keys, symmetrised; after both directions the batch's keys enter the queue.
InstDisc: one view; a linear head to 128-d; a memory bank of unit vectors per training
image (momentum 0.5); each query against the bank entries of the batch's images plus 4096
uniformly drawn entries, NCE at temperature 0.07 with Z estimated per query from each
batch (`--nce-z batch`) or once from every score of the first batch and then held
(`--nce-z first-batch`, lemniscate's NCEAverage; the preset's `loss.nce_z`).
Both: SGD lr 0.06, momentum 0.9, weight decay 5e-4, batch 256, cosine decay per step.

usage: python benches/peer_moco_instdisc.py moco|instdisc [--epochs 1] [--seed 0] [--data-dir data]
       [--nce-z batch|first-batch]
"""
import argparse
import copy
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import peer_r1
from peer_r1 import r1

QUEUE, MOCO_M, MOCO_T = 4096, 0.99, 0.2
BANK_NEG, BANK_M, NCE_T = 4096, 0.5, 0.07


def info_nce(q, k_all, pos, t):
    """q (n,d), k_all (m,d) unit rows; pos (n,) index of each query's positive key."""
    logits = q @ k_all.t() / t
    return F.cross_entropy(logits, pos)


HELD = {}


def nce(scores, pos_mask, z="batch"):
    """Our NCE: c = log mean exp(s) + log(n_neg), held constant, the mean over each row
    ("batch") or over every score of the first batch, then fixed ("first-batch");
    mean_p softplus(c - s_p) + sum_n softplus(s_n - c)."""
    n_cand = scores.shape[1]
    n_pos = pos_mask.sum(1, keepdim=True)
    n_neg = n_cand - n_pos
    if z == "first-batch":
        if "log_mean" not in HELD:
            HELD["log_mean"] = (torch.logsumexp(scores.reshape(-1), 0) - math.log(scores.numel())).detach()
        log_mean = HELD["log_mean"]
    else:
        log_mean = torch.logsumexp(scores, 1, keepdim=True) - math.log(n_cand)
    c = (log_mean + torch.log(n_neg)).detach()
    pos = (F.softplus(c - scores) * pos_mask).sum(1, keepdim=True) / n_pos
    neg = (F.softplus(scores - c) * (1 - pos_mask)).sum(1, keepdim=True)
    return (pos + neg).mean()


def instdisc_loss(z, bank, idx, keys, nce_z="batch"):
    """NCE of the normalised queries against bank[keys]; a key is positive for the queries
    of its own instance. Returns the loss and the normalised queries."""
    zq = F.normalize(z, dim=1)
    scores = zq @ bank[keys].t() / NCE_T
    return nce(scores, (idx.view(-1, 1) == keys.view(1, -1)).float(), nce_z), zq


@torch.no_grad()
def update_bank(bank, idx, zq):
    """b_i = normalise(m b_i + (1 - m) z_i), in place."""
    bank[idx] = F.normalize(BANK_M * bank[idx] + (1 - BANK_M) * zq, dim=1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("method", choices=["moco", "instdisc"])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--seed", type=int, default=0, help="added to every seed (model, augmentation, order, negatives)")
    p.add_argument("--nce-z", choices=["batch", "first-batch"], default="batch",
                   help="InstDisc's partition function: per query per batch, or fixed from the first batch")
    a, xtr, ytr, xte, yte = peer_r1.parse_and_load(p)
    mean, std = 0.2860, 0.3530
    torch.manual_seed(r1.SEED_MODEL + 10 * a.seed)
    model = r1.SimCLR()
    if a.method == "instdisc":
        model.head = nn.Linear(256, 128)
        bank = F.normalize(torch.rand(xtr.shape[0], 128) * 2 - 1, dim=1)
    else:
        key = copy.deepcopy(model)
        for x in key.parameters():
            x.requires_grad_(False)
        queue = torch.zeros(0, 128)
    opt = peer_r1.sgd(model)
    g_aug = torch.Generator().manual_seed(r1.SEED_AUG + 10 * a.seed)
    g_neg = torch.Generator().manual_seed(4 + 10 * a.seed)
    n = xtr.shape[0]
    model.train()
    t0 = time.time()
    for step, total, idx in peer_r1.batches(opt, n, a.epochs, a.seed):
        xb = xtr[idx]
        if a.method == "moco":
            v = [r1.augment(xb, g_aug, mean, std), r1.augment(xb, g_aug, mean, std)]
            _, z = model(torch.cat(v))
            zq = F.normalize(z, dim=1).split(r1.BATCH)
            with torch.no_grad():
                zk = [F.normalize(key(v[i])[1], dim=1) for i in (1, 0)]
            losses = []
            for qi, k in zip(zq, zk):
                k_all = torch.cat([k, queue])
                losses.append(info_nce(qi, k_all, torch.arange(r1.BATCH), MOCO_T))
            loss = sum(losses) / 2
        else:
            v = r1.augment(xb, g_aug, mean, std)
            _, z = model(v)
            sampled = torch.randint(0, n, (BANK_NEG,), generator=g_neg)
            keys = torch.cat([torch.unique(idx), sampled])
            loss, zq = instdisc_loss(z, bank, idx, keys, a.nce_z)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            if a.method == "moco":
                for pk, pq in zip(key.state_dict().values(), model.state_dict().values()):
                    if pk.dtype.is_floating_point:
                        pk.mul_(MOCO_M).add_(pq, alpha=1 - MOCO_M)
                queue = torch.cat([queue, zk[0], zk[1]])[-QUEUE:]
            else:
                update_bank(bank, idx, zq)
        if (step + 1) % 50 == 0:
            print(f"  step {step + 1}/{total} loss {loss.item():.4f} {(step + 1) * r1.BATCH / (time.time() - t0):.0f} img/s", flush=True)
    train_s = time.time() - t0
    res = peer_r1.evaluate_h(model.encoder, xtr, ytr, xte, yte, mean, std)
    res.update({"method": a.method, "epochs": a.epochs, "seed": a.seed, "nce_z": a.nce_z, "train_s": train_s,
                "img_per_s": total * r1.BATCH / train_s})
    print("RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    sys.exit(main())
