#!/usr/bin/env python3
"""SimSiam and DINO in PyTorch, the same recipes as configs/simsiam-fashion-mnist.toml and
configs/dino-fashion-mnist.toml, for a same-epochs accuracy comparison. Data, augmentation,
the R1 ConvNet and the evaluator (kNN k=200 and linear probe on h, the 256-d encoder
output) come from the peer's R1 reference (benches/peer/), through peer_r1.

Both: SGD lr 0.06 (x batch/256), momentum 0.9, weight decay 5e-4 on every parameter (BN
and prototypes included), batch 256 with the last incomplete batch dropped (234 steps per
epoch), cosine decay per step, no warm-up; the key encoder starts as a copy of the online
model and after every optimiser step moves as `k = m k + (1 - m) q` over parameters and BN
running statistics, with `m` on a cosine from keys.momentum to keys.momentum_end taken at
step + 1 of the run's total; it runs its BN in training mode (batch statistics).

SimSiam: R1 views (crop scale [0.2, 1]); online = encoder + MLP head 256-512(BN, ReLU)-128,
both views in one forward; predictor 128-512(BN, ReLU)-128 applied to each view's rows
apart; the key encoder is the momentum encoder at m = 0 (a copy of the online weights after
each step, so the same network with stop-gradient), reading each key view alone; loss
lightly's NegativeCosineSimilarity, symmetrised: -(cos(p1, z2) + cos(p2, z1)) / 2.

DINO: 2 global crops (28 px, scale [0.25, 1]) and 4 local crops (12 px, scale
[0.05, 0.25]), the R1 flip and jitter on each; student = encoder + the same MLP head to the
128-d bottleneck, l2-normalised, scored against 1024 unit-norm prototypes (the weight
normalised to norm 1, no bias); the global crops go through it in one forward, the local
crops in another; the teacher (momentum 0.996 -> 1.0) reads the global crops in one
forward; loss lightly's DINOLoss (teacher 0.04, student 0.1, centre momentum 0.9).

usage: python benches/peer_self_distill.py simsiam|dino [--epochs 1] [--data-dir data]
       [--threads 1] [--max-steps N] [--out-dir runs/peer]
"""
import argparse
import copy
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import peer_r1
from peer_r1 import r1

MEAN, STD = 0.2860, 0.3530
HIDDEN, OUT = 512, 128            # head.hidden, head.out
PRED_HIDDEN = 512                 # head.predictor_hidden
PROTOTYPES = 1024                 # head.prototypes (DINO's output dimension)
GLOBAL_SCALE = (0.25, 1.0)        # views.augment.crop_scale of the DINO preset
LOCAL_CROPS, LOCAL_SIZE, LOCAL_SCALE = 4, 12, (0.05, 0.25)
MOMENTUM = {"simsiam": (0.0, 0.0), "dino": (0.996, 1.0)}  # keys.momentum, keys.momentum_end


def mlp(cin, hidden, cout):
    """Our `Projection` of depth 2 with batch norm: Linear (no bias), BN, ReLU, Linear."""
    return nn.Sequential(nn.Linear(cin, hidden, bias=False), nn.BatchNorm1d(hidden),
                         nn.ReLU(inplace=True), nn.Linear(hidden, cout))


class Net(nn.Module):
    """Encoder and head; with `prototypes`, the DINO output `normalise(z) . normalise(W)`."""

    def __init__(self, prototypes=0):
        super().__init__()
        self.encoder = r1.Encoder()
        self.head = mlp(256, HIDDEN, OUT)
        # nn.Linear's init, U(+-1/sqrt(128)), as burn's Linear of the prototypes
        self.prototypes = nn.Linear(OUT, prototypes, bias=False) if prototypes else None

    def forward(self, x):
        z = self.head(self.encoder(x))
        if self.prototypes is None:
            return z
        return F.normalize(z, dim=1) @ F.normalize(self.prototypes.weight, dim=1).t()


def momentum_at(step, total, m0, m1):
    """keys.momentum_at: cosine from m0 (step 0) to m1 (step total)."""
    return m1 - (m1 - m0) * 0.5 * (1.0 + math.cos(math.pi * step / max(total, 1)))


@torch.no_grad()
def ema(key, online, m):
    """`k = m k + (1 - m) q` over every float parameter and running statistic."""
    for pk, pq in zip(key.state_dict().values(), online.state_dict().values()):
        if pk.dtype.is_floating_point:
            pk.mul_(m).add_(pq, alpha=1.0 - m)


def neg_cosine(p, z):
    """lightly's NegativeCosineSimilarity: -mean cos(p, z)."""
    return -F.cosine_similarity(p, z, dim=1).mean()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("method", choices=["simsiam", "dino"])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=0, help="debug: stop after N steps (result marked partial)")
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--out-dir", default=os.path.join(peer_r1.ROOT, "runs", "peer"))
    a, xtr, ytr, xte, yte = peer_r1.parse_and_load(p)
    from lightly.loss import DINOLoss

    torch.manual_seed(r1.SEED_MODEL)
    dino = a.method == "dino"
    model = Net(prototypes=PROTOTYPES if dino else 0)
    predictor = None if dino else mlp(OUT, PRED_HIDDEN, OUT)
    online = nn.ModuleList([model] + ([predictor] if predictor is not None else []))
    key = copy.deepcopy(model)  # the momentum key encoder (SimSiam: m = 0; DINO's teacher)
    for x in key.parameters():
        x.requires_grad_(False)
    key.train()  # batch statistics in its forward, as our key encoder
    criterion = DINOLoss(output_dim=PROTOTYPES, warmup_teacher_temp=0.04, teacher_temp=0.04,
                         student_temp=0.1, center_momentum=0.9) if dino else None
    opt = peer_r1.sgd(online)
    m0, m1 = MOMENTUM[a.method]
    g_aug = torch.Generator().manual_seed(r1.SEED_AUG)
    n = xtr.shape[0]
    online.train()
    print(f"{a.method}: epochs={a.epochs} steps/epoch={n // r1.BATCH} threads={torch.get_num_threads()}",
          flush=True)
    t0 = time.time()
    done, losses = 0, []
    for step, total, idx in peer_r1.batches(opt, n, a.epochs):
        if a.max_steps and step >= a.max_steps:
            break
        xb = xtr[idx]
        if dino:
            g = [r1.augment(xb, g_aug, MEAN, STD, scale=GLOBAL_SCALE) for _ in range(2)]
            loc = [r1.augment(xb, g_aug, MEAN, STD, scale=LOCAL_SCALE, out=LOCAL_SIZE)
                   for _ in range(LOCAL_CROPS)]
            student = list(model(torch.cat(g)).split(r1.BATCH)) + list(model(torch.cat(loc)).split(r1.BATCH))
            with torch.no_grad():
                teacher = list(key(torch.cat(g)).split(r1.BATCH))
            loss = criterion(teacher, student)
        else:
            v = [r1.augment(xb, g_aug, MEAN, STD), r1.augment(xb, g_aug, MEAN, STD)]
            z = model(torch.cat(v)).split(r1.BATCH)
            pr = [predictor(zi) for zi in z]  # one predictor forward per direction
            with torch.no_grad():
                k = [key(vi) for vi in v]  # each key view alone
            loss = (neg_cosine(pr[0], k[1]) + neg_cosine(pr[1], k[0])) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema(key, model, momentum_at(step + 1, total, m0, m1))
        li = loss.item()
        if not math.isfinite(li):
            raise RuntimeError(f"non-finite loss at step {step + 1}")
        losses.append(li)
        done = step + 1
        if done % a.log_every == 0 or done == 1:
            print(f"  step {done}/{total} loss {li:.4f} lr {opt.param_groups[0]['lr']:.5f} "
                  f"{done * r1.BATCH / (time.time() - t0):.0f} img/s", flush=True)
    train_s = time.time() - t0
    t1 = time.time()
    ev = peer_r1.evaluate_h(model.encoder, xtr, ytr, xte, yte, MEAN, STD)
    eval_s = time.time() - t1
    res = {"kind": "self-distill", "method": a.method, "epochs": a.epochs, "threads": a.threads,
           "torch": torch.__version__, "steps_done": done, "total_steps_planned": total,
           "final_mean_loss": sum(losses) / max(len(losses), 1), "last_loss": losses[-1] if losses else None,
           "train_s": train_s, "img_per_s": done * r1.BATCH / train_s, "eval_s": eval_s,
           "wall_s": time.time() - t0, "knn_top1": ev["knn_top1"], "linear_top1": ev["linear_top1"],
           "eval": ev}
    if a.max_steps:
        res["partial"] = True
    print(f"{a.method}: kNN {ev['knn_top1']:.4f}  linear {ev['linear_top1']:.4f}  "
          f"{res['img_per_s']:.1f} img/s  train {train_s:.1f}s  eval {eval_s:.1f}s  wall {res['wall_s']:.1f}s",
          flush=True)
    r1.write(a, f"{a.method}_e{a.epochs}{'_partial' if a.max_steps else ''}.json", res)
    print("RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    sys.exit(main())
