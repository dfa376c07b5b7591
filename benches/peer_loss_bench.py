#!/usr/bin/env python3
"""PyTorch side of the loss benchmark: NT-Xent and SupCon forward + backward on 2N
embeddings of dim 128, cosine similarity, temperature 0.1, median of repeats.

usage: peer_loss_bench.py <ntxent|supcon> <batch> [repeats=5] [threads=2]
NT-Xent as in SimCLR (cross-entropy over the 2N-1 other views); SupCon L_out as in
Khosla et al.'s reference implementation, labels i % 10.
"""
import sys
import time

import torch
import torch.nn.functional as F


def nt_xent(z, n, t):
    z = F.normalize(z, dim=1)
    logits = z @ z.t() / t
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(logits, target)


def supcon(z, labels, t):
    z = F.normalize(z, dim=1)
    m = z.shape[0]
    logits = z @ z.t() / t
    logits = logits - logits.max(dim=1, keepdim=True).values.detach()
    self_mask = torch.eye(m, dtype=torch.bool)
    pos = (labels[:, None] == labels[None, :]) & ~self_mask
    exp = torch.exp(logits).masked_fill(self_mask, 0)
    log_prob = logits - torch.log(exp.sum(1, keepdim=True))
    mean_log_prob_pos = (log_prob * pos).sum(1) / pos.sum(1)
    return -mean_log_prob_pos.mean()


def main():
    which = sys.argv[1]
    n = int(sys.argv[2])
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    z0 = torch.randn(2 * n, 128)
    labels = torch.arange(2 * n) % n % 10
    times = []
    for _ in range(reps + 1):
        z = z0.clone().requires_grad_()
        t0 = time.perf_counter()
        loss = nt_xent(z, n, 0.1) if which == "ntxent" else supcon(z, labels, 0.1)
        loss.backward()
        times.append((time.perf_counter() - t0) * 1e3)
    times = sorted(times[1:])
    print(f"RESULT framework=torch-{torch.__version__} workload={which}-{n} "
          f"ms={times[len(times) // 2]:.2f} loss={loss.item():.4f}")


if __name__ == "__main__":
    main()
