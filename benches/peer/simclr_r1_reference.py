#!/usr/bin/env python3
"""PyTorch CPU reference for contrastive recipe R1 (SimCLR on Fashion-MNIST / MNIST).

Sub-commands (all write a JSON result file into --out-dir):
  baselines  : raw-pixel kNN + linear probe, random-init encoder kNN + linear probe
  train      : SimCLR R1 for --epochs epochs (cosine schedule planned over exactly
               those epochs), then kNN + linear probe on the representation h
  summary    : print a table from all JSON files in --out-dir

Everything is seeded; torch.set_num_threads(2).

Measured on a 2-core machine (Fashion-MNIST test top-1, kNN / linear probe):
  raw pixels            0.8178 / 0.8448
  random-init encoder   0.7709 / 0.8310
  R1, 1 epoch           0.7929 / 0.8494
  R1, 3 epochs          0.8077 / 0.8683
  R1, 5 epochs          0.8045 / 0.8727   (about 480-540 images/s training, 2 threads)

Usage: python simclr_r1_reference.py train --epochs 3 --data-dir DATA --out-dir OUT
(DATA laid out by `contrastive data fetch fashion-mnist`, e.g. data/fashion-mnist)
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ----------------------------------------------------------------------------
# constants of recipe R1
# ----------------------------------------------------------------------------
DATASETS = {
    # name: (dir, mean, std)
    "fmnist": ("fashion-mnist", 0.2860, 0.3530),
    # MNIST uses its own standard statistics (see report); override with --mean/--std
    "mnist": ("mnist", 0.1307, 0.3081),
}
DATA_DIR = "data"
IMG = 28
BATCH = 256
BASE_LR = 0.06
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
TEMPERATURE = 0.2
CROP_SCALE = (0.2, 1.0)
CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)
FLIP_P = 0.5
JITTER_P = 0.8
JITTER_STRENGTH = 0.4  # brightness and contrast factor ~ U[0.6, 1.4]
KNN_K = 200
KNN_T = 0.1
PROBE_LR = 1e-3
PROBE_BATCH = 512
PROBE_EPOCHS = 30

SEED_MODEL = 0    # model init
SEED_AUG = 1      # augmentation RNG (torch.Generator)
SEED_SHUFFLE = 2  # epoch permutation RNG (torch.Generator)
SEED_PROBE = 3    # linear probe init + shuffling


# ----------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------
def read_idx(path):
    import gzip
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path = path + ".gz"
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return arr.reshape(dims)


def load_dataset(name):
    d = os.path.join(DATA_DIR, DATASETS[name][0])
    xtr = read_idx(os.path.join(d, "train-images-idx3-ubyte"))
    ytr = read_idx(os.path.join(d, "train-labels-idx1-ubyte"))
    xte = read_idx(os.path.join(d, "t10k-images-idx3-ubyte"))
    yte = read_idx(os.path.join(d, "t10k-labels-idx1-ubyte"))
    # uint8 -> float in [0,1], shape (N,1,28,28)
    xtr = torch.from_numpy(xtr.astype(np.float32) / 255.0).unsqueeze(1)
    xte = torch.from_numpy(xte.astype(np.float32) / 255.0).unsqueeze(1)
    ytr = torch.from_numpy(ytr.astype(np.int64))
    yte = torch.from_numpy(yte.astype(np.int64))
    return xtr, ytr, xte, yte


# ----------------------------------------------------------------------------
# augmentation (batched, torch ops only; semantics follow torchvision)
# ----------------------------------------------------------------------------
def sample_crop_params(n, gen, H=IMG, W=IMG, scale=CROP_SCALE, ratio=CROP_RATIO, attempts=10):
    """torchvision RandomResizedCrop.get_params, vectorised over n images.

    Returns integer (i, j, h, w) tensors (top, left, height, width)."""
    area = float(H * W)
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    u_area = torch.rand(n, attempts, generator=gen)
    u_ratio = torch.rand(n, attempts, generator=gen)
    u_i = torch.rand(n, attempts, generator=gen)
    u_j = torch.rand(n, attempts, generator=gen)
    target_area = area * (scale[0] + (scale[1] - scale[0]) * u_area)
    aspect = torch.exp(log_r[0] + (log_r[1] - log_r[0]) * u_ratio)
    w = torch.round(torch.sqrt(target_area * aspect))
    h = torch.round(torch.sqrt(target_area / aspect))
    ok = (w > 0) & (w <= W) & (h > 0) & (h <= H)
    # first valid attempt (argmax on int gives the first max); fallback = full image
    any_ok = ok.any(dim=1)
    first = ok.to(torch.int64).argmax(dim=1)
    idx = torch.arange(n)
    w_sel = w[idx, first]
    h_sel = h[idx, first]
    # i ~ randint(0, H-h+1), j ~ randint(0, W-w+1)
    i_sel = torch.floor(u_i[idx, first] * (H - h_sel + 1))
    j_sel = torch.floor(u_j[idx, first] * (W - w_sel + 1))
    # fallback: whole image (28x28 has ratio 1, inside [3/4,4/3] -> full crop)
    w_sel = torch.where(any_ok, w_sel, torch.full_like(w_sel, W))
    h_sel = torch.where(any_ok, h_sel, torch.full_like(h_sel, H))
    i_sel = torch.where(any_ok, i_sel, torch.zeros_like(i_sel))
    j_sel = torch.where(any_ok, j_sel, torch.zeros_like(j_sel))
    return i_sel, j_sel, h_sel, w_sel


def crop_resize_flip(x, i, j, h, w, flip, out=IMG):
    """Crop box (top i, left j, height h, width w) resized to out x out with bilinear
    interpolation exactly as F.interpolate(crop, align_corners=False) / torchvision
    Resize (source coordinate (d+0.5)*size/out-0.5 clamped to the crop box), then an
    optional horizontal flip.  Implemented as one batched grid_sample."""
    n, _, H, W = x.shape
    d = torch.arange(out, dtype=torch.float32) + 0.5
    # pixel-space source coordinates, (n, out)
    sx = (d.view(1, -1) * (w / out).view(-1, 1) - 0.5).clamp(min=0.0)
    sx = torch.minimum(sx, (w - 1).view(-1, 1)) + j.view(-1, 1)
    sy = (d.view(1, -1) * (h / out).view(-1, 1) - 0.5).clamp(min=0.0)
    sy = torch.minimum(sy, (h - 1).view(-1, 1)) + i.view(-1, 1)
    sx = torch.where(flip.view(-1, 1), sx.flip(1), sx)
    # to grid_sample normalised coordinates (align_corners=False)
    gx = (2.0 * sx + 1.0) / W - 1.0
    gy = (2.0 * sy + 1.0) / H - 1.0
    grid = torch.stack([gx.view(n, 1, out).expand(n, out, out),
                        gy.view(n, out, 1).expand(n, out, out)], dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def augment(x, gen, mean, std, scale=CROP_SCALE, out=IMG):
    """One random view per image. x: (n,1,28,28) in [0,1]. Returns normalised view,
    (n,1,out,out). `scale` and `out` default to R1's (0.2,1) and 28; the self-distillation
    peer (benches/peer_self_distill.py) sets them for DINO's global and local crops.

    1. RandomResizedCrop(out, scale, ratio=(3/4,4/3)), bilinear: integer crop
       box drawn as torchvision get_params, resampled like torchvision/F.interpolate
       (align_corners=False, coordinates clamped to the crop) via one grid_sample
    2. horizontal flip p=0.5 (folded into the sampling grid)
    3. with p=0.8: brightness (x*b) and contrast (c*x + (1-c)*mean(x)), b,c ~ U[0.6,1.4],
       each followed by clamp to [0,1]; order of the two ops random per image (p=0.5),
       like torchvision ColorJitter
    4. normalise (x - mean) / std
    """
    n = x.shape[0]
    i, j, h, w = sample_crop_params(n, gen, scale=scale)
    flip = torch.rand(n, generator=gen) < FLIP_P
    v = crop_resize_flip(x, i, j, h, w, flip, out=out)

    # colour (intensity) jitter
    apply = torch.rand(n, generator=gen) < JITTER_P
    lo, hi = 1.0 - JITTER_STRENGTH, 1.0 + JITTER_STRENGTH
    bf = lo + (hi - lo) * torch.rand(n, generator=gen)
    cf = lo + (hi - lo) * torch.rand(n, generator=gen)
    b_first = torch.rand(n, generator=gen) < 0.5
    bf = torch.where(apply, bf, torch.ones_like(bf)).view(n, 1, 1, 1)
    cf = torch.where(apply, cf, torch.ones_like(cf)).view(n, 1, 1, 1)

    def bright(t):
        return (t * bf).clamp_(0.0, 1.0)

    def contrast(t):
        m = t.mean(dim=(1, 2, 3), keepdim=True)
        return (cf * t + (1.0 - cf) * m).clamp_(0.0, 1.0)

    path_bc = contrast(bright(v))
    path_cb = bright(contrast(v))
    v = torch.where(b_first.view(n, 1, 1, 1), path_bc, path_cb)
    # when not applied, bf=cf=1 -> identity (clamp is a no-op on [0,1] input)
    return (v - mean) / std


# ----------------------------------------------------------------------------
# model
# ----------------------------------------------------------------------------
def conv_bn_relu(cin, cout, stride):
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            *conv_bn_relu(1, 32, 1),     # 28x28
            *conv_bn_relu(32, 64, 2),    # 14x14
            *conv_bn_relu(64, 128, 2),   # 7x7
            *conv_bn_relu(128, 256, 2),  # 4x4
        )

    def forward(self, x):
        return self.features(x).mean(dim=(2, 3))  # global average pool -> (n,256)


class SimCLR(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.head = nn.Sequential(
            nn.Linear(256, 256, bias=False), nn.BatchNorm1d(256), nn.ReLU(inplace=True),
            nn.Linear(256, 128, bias=True))

    def forward(self, x):
        h = self.encoder(x)
        return h, self.head(h)


def nt_xent(z, temperature=TEMPERATURE):
    """z: (2N, d), rows [0,N) view 1, [N,2N) view 2. Mean over 2N anchors."""
    n2 = z.shape[0]
    n = n2 // 2
    z = F.normalize(z, dim=1)
    logits = z @ z.t() / temperature
    logits = logits.masked_fill(torch.eye(n2, dtype=torch.bool), float("-inf"))
    target = torch.cat([torch.arange(n, n2), torch.arange(0, n)])
    return F.cross_entropy(logits, target)


# ----------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------
@torch.no_grad()
def extract(encoder, x_norm, bs=512):
    encoder.eval()
    out = [encoder(x_norm[k:k + bs]) for k in range(0, x_norm.shape[0], bs)]
    return torch.cat(out)


@torch.no_grad()
def knn_eval(ftr, ytr, fte, yte, k=KNN_K, t=KNN_T, num_classes=10, chunk=500):
    """Weighted kNN (InstDisc / lightly knn_predict): cosine sim, top-k, weights exp(sim/t)."""
    ftr = F.normalize(ftr, dim=1)
    fte = F.normalize(fte, dim=1)
    correct = 0
    for s in range(0, fte.shape[0], chunk):
        q = fte[s:s + chunk]
        sim = q @ ftr.t()
        sw, si = sim.topk(k, dim=1)
        lab = ytr[si]
        w = (sw / t).exp()
        scores = torch.zeros(q.shape[0], num_classes).scatter_add_(1, lab, w)
        pred = scores.argmax(dim=1)
        correct += (pred == yte[s:s + chunk]).sum().item()
    return correct / fte.shape[0]


def linear_probe(ftr, ytr, fte, yte, epochs=PROBE_EPOCHS, lr=PROBE_LR, bs=PROBE_BATCH, seed=SEED_PROBE):
    """Logistic regression on standardised (train mean/std) frozen features, Adam."""
    mu = ftr.mean(0, keepdim=True)
    sd = ftr.std(0, unbiased=False, keepdim=True)
    sd = torch.where(sd < 1e-6, torch.ones_like(sd), sd)  # constant features -> unscaled
    xtr = (ftr - mu) / sd
    xte = (fte - mu) / sd
    torch.manual_seed(seed)
    clf = nn.Linear(xtr.shape[1], 10)
    opt = torch.optim.Adam(clf.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    n = xtr.shape[0]
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        for s in range(0, n, bs):  # last partial batch kept
            idx = perm[s:s + bs]
            loss = F.cross_entropy(clf(xtr[idx]), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    with torch.no_grad():
        tr_acc = (clf(xtr).argmax(1) == ytr).float().mean().item()
        te_acc = (clf(xte).argmax(1) == yte).float().mean().item()
    return te_acc, tr_acc


def evaluate(ftr, ytr, fte, yte):
    t0 = time.time()
    knn = knn_eval(ftr, ytr, fte, yte)
    t1 = time.time()
    lin, lin_tr = linear_probe(ftr, ytr, fte, yte)
    t2 = time.time()
    return {"knn_top1": knn, "linear_top1": lin, "linear_train_top1": lin_tr,
            "knn_s": t1 - t0, "linear_s": t2 - t1}


# ----------------------------------------------------------------------------
# commands
# ----------------------------------------------------------------------------
def setup(args):
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    ds_dir, mean, std = DATASETS[args.dataset]
    mean = args.mean if args.mean is not None else mean
    std = args.std if args.std is not None else std
    xtr, ytr, xte, yte = load_dataset(args.dataset)
    return xtr, ytr, xte, yte, mean, std


def cmd_baselines(args):
    xtr, ytr, xte, yte, mean, std = setup(args)
    ntr, nte = (xtr - mean) / std, (xte - mean) / std
    res = {"kind": "baselines", "dataset": args.dataset, "mean": mean, "std": std,
           "threads": args.threads, "torch": torch.__version__}
    print(f"[{args.dataset}] raw pixels ...", flush=True)
    r = evaluate(ntr.flatten(1), ytr, nte.flatten(1), yte)
    res["raw_pixels"] = r
    print(f"  raw pixels: kNN {r['knn_top1']:.4f}  linear {r['linear_top1']:.4f}", flush=True)
    torch.manual_seed(SEED_MODEL)
    model = SimCLR()  # same init as the SimCLR runs (same seed)
    t0 = time.time()
    ftr, fte = extract(model.encoder, ntr), extract(model.encoder, nte)
    res["feature_extract_s"] = time.time() - t0
    r = evaluate(ftr, ytr, fte, yte)
    res["random_init"] = r
    print(f"  random-init encoder: kNN {r['knn_top1']:.4f}  linear {r['linear_top1']:.4f}", flush=True)
    write(args, f"baselines_{args.dataset}.json", res)


def cmd_train(args):
    xtr, ytr, xte, yte, mean, std = setup(args)
    ntr, nte = (xtr - mean) / std, (xte - mean) / std
    torch.manual_seed(SEED_MODEL)
    model = SimCLR()
    lr0 = BASE_LR * BATCH / 256
    opt = torch.optim.SGD(model.parameters(), lr=lr0, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    g_aug = torch.Generator().manual_seed(SEED_AUG)
    g_shuf = torch.Generator().manual_seed(SEED_SHUFFLE)
    n = xtr.shape[0]
    steps_per_epoch = n // BATCH  # drop last incomplete batch
    total_steps = steps_per_epoch * args.epochs
    max_steps = args.max_steps if args.max_steps else total_steps
    step = 0
    epochs_log = []
    print(f"[{args.dataset}] SimCLR R1: epochs={args.epochs} steps/epoch={steps_per_epoch} "
          f"lr0={lr0} threads={torch.get_num_threads()}", flush=True)
    t_train0 = time.time()
    for ep in range(args.epochs):
        model.train()
        perm = torch.randperm(n, generator=g_shuf)
        t_ep = time.time()
        c_ep = time.process_time()
        load0 = os.getloadavg()[0]
        t_aug = 0.0
        loss_sum = 0.0
        nb = 0
        for b in range(steps_per_epoch):
            if step >= max_steps:
                break
            # cosine decay per optimisation step over the planned run, no warm-up
            lr = lr0 * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
            for pg in opt.param_groups:
                pg["lr"] = lr
            idx = perm[b * BATCH:(b + 1) * BATCH]
            xb = xtr[idx]
            ta = time.time()
            v1 = augment(xb, g_aug, mean, std)
            v2 = augment(xb, g_aug, mean, std)
            t_aug += time.time() - ta
            _, z = model(torch.cat([v1, v2]))
            loss = nt_xent(z)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            li = loss.item()
            if not math.isfinite(li):
                raise RuntimeError(f"non-finite loss at step {step}")
            loss_sum += li
            nb += 1
            step += 1
            if step % args.log_every == 0 or b == 0:
                el = time.time() - t_ep
                print(f"  ep {ep + 1} step {b + 1}/{steps_per_epoch} loss {li:.4f} lr {lr:.5f} "
                      f"{(b + 1) * BATCH / el:.1f} img/s", flush=True)
        dt = time.time() - t_ep
        e = {"epoch": ep + 1, "mean_loss": loss_sum / max(nb, 1), "last_loss": li, "steps": nb,
             "wall_s": dt, "cpu_s": time.process_time() - c_ep, "aug_s": t_aug,
             "img_per_s": nb * BATCH / dt, "loadavg1_start": load0,
             "loadavg1_end": os.getloadavg()[0]}
        epochs_log.append(e)
        print(f"  epoch {ep + 1}: mean loss {e['mean_loss']:.4f} last {li:.4f} "
              f"wall {dt:.1f}s (aug {t_aug:.1f}s, cpu {e['cpu_s']:.1f}s, load {load0:.2f}->{e['loadavg1_end']:.2f}) "
              f"{e['img_per_s']:.1f} img/s", flush=True)
        if step >= max_steps:
            break
    train_s = time.time() - t_train0
    t0 = time.time()
    ftr, fte = extract(model.encoder, ntr), extract(model.encoder, nte)
    fe_s = time.time() - t0
    r = evaluate(ftr, ytr, fte, yte)
    print(f"  eval: kNN {r['knn_top1']:.4f}  linear {r['linear_top1']:.4f} "
          f"(extract {fe_s:.1f}s, knn {r['knn_s']:.1f}s, linear {r['linear_s']:.1f}s)", flush=True)
    res = {"kind": "train", "dataset": args.dataset, "epochs": args.epochs, "mean": mean,
           "std": std, "threads": args.threads, "torch": torch.__version__,
           "steps_done": step, "total_steps_planned": total_steps, "train_s": train_s,
           "epoch_log": epochs_log, "final_mean_loss": epochs_log[-1]["mean_loss"],
           "final_last_loss": epochs_log[-1]["last_loss"],
           "mean_epoch_s": sum(e["wall_s"] for e in epochs_log) / len(epochs_log),
           "mean_img_per_s": sum(e["steps"] for e in epochs_log) * BATCH /
           sum(e["wall_s"] for e in epochs_log),
           "feature_extract_s": fe_s, "eval": r}
    if args.max_steps:
        res["partial"] = True
    if args.save:
        torch.save(model.state_dict(), os.path.join(args.out_dir, f"model_{args.dataset}_e{args.epochs}.pt"))
    write(args, f"train_{args.dataset}_e{args.epochs}{'_partial' if args.max_steps else ''}.json", res)


def write(args, name, res):
    os.makedirs(args.out_dir, exist_ok=True)
    p = os.path.join(args.out_dir, name)
    with open(p, "w") as f:
        json.dump(res, f, indent=2)
    print(f"wrote {p}", flush=True)


def cmd_summary(args):
    rows = []
    files = sorted(os.listdir(args.out_dir)) if os.path.isdir(args.out_dir) else []
    for fn in files:
        if not fn.endswith(".json"):
            continue
        with open(os.path.join(args.out_dir, fn)) as f:
            r = json.load(f)
        if r["kind"] == "baselines":
            for key, label in (("raw_pixels", "raw pixels"), ("random_init", "random-init encoder")):
                e = r[key]
                rows.append((r["dataset"], label, e["knn_top1"], e["linear_top1"], None, None, None))
        elif r["kind"] == "train" and not r.get("partial"):
            e = r["eval"]
            rows.append((r["dataset"], f"SimCLR R1 {r['epochs']} ep", e["knn_top1"], e["linear_top1"],
                         r["final_mean_loss"], r["mean_epoch_s"], r["mean_img_per_s"]))
    order = {"fmnist": 0, "mnist": 1}
    rows.sort(key=lambda t: (order.get(t[0], 9), t[1].startswith("SimCLR"), t[1]))
    hdr = f"{'dataset':8} {'model':22} {'kNN top1':>9} {'linear top1':>12} {'final loss':>11} {'s/epoch':>8} {'img/s':>7}"
    print(hdr)
    print("-" * len(hdr))
    f = lambda v, fmt: (fmt % v) if v is not None else "-"
    for d, m, k, l, loss, eps, ips in rows:
        print(f"{d:8} {m:22} {k * 100:8.2f}% {l * 100:11.2f}% {f(loss, '%.4f'):>11} "
              f"{f(eps, '%.1f'):>8} {f(ips, '%.1f'):>7}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["baselines", "train", "summary"])
    p.add_argument("--dataset", choices=list(DATASETS), default="fmnist")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--mean", type=float, default=None)
    p.add_argument("--std", type=float, default=None)
    p.add_argument("--max-steps", type=int, default=0, help="debug: stop early (result marked partial)")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--save", action="store_true", help="save final state_dict")
    p.add_argument("--out-dir", default="results")
    p.add_argument("--data-dir", default="data", help="folder laid out by `contrastive data fetch` (holds fashion-mnist/)")
    args = p.parse_args()
    global DATA_DIR
    DATA_DIR = args.data_dir
    {"baselines": cmd_baselines, "train": cmd_train, "summary": cmd_summary}[args.cmd](args)


if __name__ == "__main__":
    main()
