#!/usr/bin/env python3
"""Training-step throughput and peak memory of contrastive (burn `flex`) beside PyTorch,
measured in one run, workloads interleaved, medians over rounds.

usage: benches/compare.py [--suite steps|losses] [--rounds 5] [--workloads ...]
                          [--precisions f32,bf16] [--python PY] [--peer-dir benches/peer]
                          [--warmup 3] [--timed 10]

suite `steps` (default): one training step (images/s), workloads resnet,mlp,r1 and
resnet18 (the anchors' ResNet-18 SimCLR step), each at every precision asked for (bf16:
our `train.precision = "bf16"` beside PyTorch's autocast; peers in benches/peer_step.py);
suite `losses`: NT-Xent and SupCon forward + backward, batches 256,1024,4096 (ms).

--python is the interpreter with torch installed (a virtualenv outside the repo).
Builds `cargo build --release --example step_bench` first. Standard library only.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, key="images_per_s"):
    """Runs cmd; returns (the RESULT line's `key`, peak RSS in MB of that process)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {err.strip().splitlines()[-1] if err.strip() else proc.returncode}")
    m = re.search(key + r"=([0-9.]+)", out)
    rss = re.search(r"peak_rss_mb=([0-9.]+)", out)
    if not m:
        sys.exit(f"no RESULT line from {' '.join(cmd)}")
    return float(m.group(1)), float(rss.group(1)) if rss else float("nan")


def losses(a):
    subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "loss_bench"], cwd=ROOT, check=True)
    ours_bin = os.path.join(ROOT, "target", "release", "examples", "loss_bench")
    peer = os.path.join(ROOT, "benches", "peer_loss_bench.py")
    work = [(l, n) for l in ("ntxent", "supcon") for n in (256, 1024, 4096)]
    res = {w: {"ours": [], "torch": []} for w in work}
    for r in range(a.rounds):
        for l, n in work:
            cmds = [("ours", [ours_bin, l, str(n), "3"]), ("torch", [a.python, peer, l, str(n), "3", "2"])]
            for name, cmd in (cmds if r % 2 == 0 else cmds[::-1]):
                ms, _ = run(cmd, "ms")
                res[(l, n)][name].append(ms)
                print(f"round {r + 1} {l}-{n:<5} {name:5} {ms:9.2f} ms", flush=True)
    print()
    print(f"{'loss':8} {'batch':>6} {'contrastive ms':>15} {'PyTorch ms':>11} {'speed-up':>9}")
    for (l, n), v in res.items():
        o, t = statistics.median(v["ours"]), statistics.median(v["torch"])
        print(f"{l:8} {n:6} {o:15.2f} {t:11.2f} {t / o:9.2f}")
    print(f"(forward + backward, 2N x 128, medians of {a.rounds} rounds; {time.strftime('%Y-%m-%d %H:%M')})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", choices=["steps", "losses"], default="steps")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workloads", default="resnet,mlp,r1")
    ap.add_argument("--precisions", default="f32")
    ap.add_argument("--python", default=os.environ.get("PEER_PYTHON", "python3"))
    ap.add_argument("--peer-dir", default=os.path.join(ROOT, "benches", "peer"))
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--timed", type=int, default=10)
    a = ap.parse_args()
    if a.suite == "losses":
        return losses(a)
    subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "step_bench"], cwd=ROOT, check=True)
    ours_bin = os.path.join(ROOT, "target", "release", "examples", "step_bench")
    rss_wrap = os.path.join(ROOT, "benches", "peak_rss.py")
    cases = [(w, p) for w in a.workloads.split(",") for p in a.precisions.split(",")]
    results = {c: {"ours": [], "torch": [], "ours_mb": [], "torch_mb": []} for c in cases}
    for r in range(a.rounds):
        for w, p in cases:
            # the MLP step is short and ResNet-18's long: about the same seconds each
            timed = {"mlp": a.timed * 5, "resnet18": max(2, a.timed // 3)}.get(w, a.timed)
            warmup = str(min(a.warmup, 1) if w == "resnet18" else a.warmup)
            ours = [sys.executable, rss_wrap, ours_bin, w, warmup, str(timed), p]
            peer = [sys.executable, rss_wrap, a.python, os.path.join(ROOT, "benches", "peer_step.py"),
                    a.peer_dir, w, warmup, str(timed), "2", p]
            order = [("ours", ours), ("torch", peer)] if r % 2 == 0 else [("torch", peer), ("ours", ours)]
            for name, cmd in order:
                ips, mb = run(cmd)
                results[(w, p)][name].append(ips)
                results[(w, p)][name + "_mb"].append(mb)
                print(f"round {r + 1} {w:8} {p:4} {name:5} {ips:9.1f} images/s  peak {mb:7.0f} MB", flush=True)
    print()
    print(f"{'workload':8} {'prec':4} {'contrastive img/s':>18} {'PyTorch img/s':>14} {'ratio':>6} "
          f"{'peak MB ours':>13} {'peak MB torch':>14}")
    for (w, p), v in results.items():
        o, t = statistics.median(v["ours"]), statistics.median(v["torch"])
        om, tm = statistics.median(v["ours_mb"]), statistics.median(v["torch_mb"])
        print(f"{w:8} {p:4} {o:18.1f} {t:14.1f} {o / t:6.2f} {om:13.0f} {tm:14.0f}")
    print(f"(medians of {a.rounds} rounds; {time.strftime('%Y-%m-%d %H:%M')}; {os.cpu_count()} CPUs; {cpu_flags()})")


def cpu_flags():
    """The CPU's model and its AVX-512 and AMX flags, from /proc/cpuinfo."""
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        return "CPU flags unknown"
    model = re.search(r"model name\s*:\s*(.*)", info)
    flags = re.search(r"flags\s*:\s*(.*)", info)
    wanted = sorted({f for f in (flags.group(1).split() if flags else [])
                     if f.startswith(("avx512", "amx")) or f in ("avx2", "fma")})
    return f"{model.group(1).strip() if model else 'CPU'}: {' '.join(wanted)}"


if __name__ == "__main__":
    main()
