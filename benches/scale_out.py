#!/usr/bin/env python3
"""Data-parallel throughput: images/s of a training run in one process (2 threads), on
2 ranks of 1 thread over shared memory, and on 2 ranks in two network namespaces over
TCP (scripts/netns-hosts.sh, root), with the seconds and bytes each step spends in
collectives. Rounds are interleaved; the table gives medians.

usage: benches/scale_out.py [--rounds 3] [--limit 10240] [--bin target/release/contrastive]
(build with `cargo build --release --features mpi`; run from the repository root)
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile

WORKLOADS = {
    # R1: the README's SimCLR preset (a 4-block convnet, batch 256) on Fashion-MNIST
    "r1": [],
    # the ResNet step of benches/compare.py: 4 stages of one block, 32..256 channels
    "resnet": [
        "encoder.kind=\"resnet\"",
        "encoder.channels=[32, 64, 128, 256]",
        "encoder.blocks=[1, 1, 1, 1]",
    ],
}
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def run(launch, sets, out, binary):
    cmd = [binary, "train", "--quiet", "--config", os.path.abspath("configs/simclr-fashion-mnist.toml")]
    for s in sets:
        cmd += ["--set", s]
    cmd += ["--out", out]
    if launch == "1 process x 2 threads":
        cmd += ["--set", "train.threads=2"]
    elif launch == "2 ranks x 1 thread, shm":
        cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-np", "2"] + cmd
    else:
        cmd = ["scripts/netns-hosts.sh", "run"] + cmd
    subprocess.run(cmd, check=True, env=ENV, stdout=subprocess.DEVNULL)
    rec = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl"))]
    epoch = next(r for r in rec if "epoch_seconds" in r)
    steps = sum(1 for r in rec if "loss" in r and "epoch_seconds" not in r and "knn_top1" not in r)
    return epoch["images_per_s"], epoch.get("comm_seconds", 0.0) / steps, epoch.get("comm_bytes", 0) / steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit", type=int, default=10240)
    ap.add_argument("--bin", default=os.path.abspath("target/release/contrastive"))
    a = ap.parse_args()
    launches = ["1 process x 2 threads", "2 ranks x 1 thread, shm", "2 ranks x 1 thread, TCP"]
    results = {}
    for r in range(a.rounds):
        for w, extra in WORKLOADS.items():
            limit = a.limit if w == "r1" else a.limit // 4
            sets = [
                "data.dir=" + os.path.abspath("data/fashion-mnist"),
                f"data.limit={limit}",
                "train.batch_size=256" if w == "r1" else "train.batch_size=128",
                "eval.linear_epochs=0", "eval.baseline=false", "eval.test_limit=100",
            ] + extra
            for launch in launches:
                with tempfile.TemporaryDirectory() as d:
                    got = run(launch, sets, os.path.join(d, "run"), a.bin)
                results.setdefault((w, launch), []).append(got)
                print(f"round {r + 1} {w:6} {launch:26} {got[0]:8.1f} img/s "
                      f"{got[1] * 1e3:7.2f} ms/step in collectives {got[2] / 1e6:6.2f} MB/step", flush=True)
    print("\n| workload | launch | images/s (median) | vs 1 process | ms/step in collectives | MB sent/step |")
    print("|---|---|---|---|---|---|")
    for w in WORKLOADS:
        base = statistics.median(x[0] for x in results[(w, launches[0])])
        for launch in launches:
            xs = results[(w, launch)]
            ips = statistics.median(x[0] for x in xs)
            print(f"| {w} | {launch} | {ips:.0f} | {ips / base:.2f} | "
                  f"{statistics.median(x[1] for x in xs) * 1e3:.2f} | {statistics.median(x[2] for x in xs) / 1e6:.2f} |")


if __name__ == "__main__":
    main()
