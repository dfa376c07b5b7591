#!/usr/bin/env python3
"""The machine's measured GEMM rate, the yardstick of docs/performance.md: PyTorch's square
f32 and bf16 matrix products (oneDNN/MKL; AMX where the CPU has it) beside ours
(examples/gemm_bench.rs), interleaved rounds, medians, with the CPU's flags.

usage: benches/gemm_rate.py --python /path/venv/bin/python [--size 2048] [--rounds 3] [--threads 2]
Builds `cargo build --release --example gemm_bench` first.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import cpu_flags  # noqa: E402

PEER = """
import sys, time, torch
n, threads = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
out = []
for dtype in (torch.float32, torch.bfloat16):
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    ts = []
    for _ in range(5):
        t0 = time.perf_counter(); a @ b; ts.append(time.perf_counter() - t0)
    out.append(2 * n ** 3 / sorted(ts)[2] / 1e9)
print(f"RESULT f32_gflops={out[0]:.1f} bf16_gflops={out[1]:.1f}")
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default=os.environ.get("PEER_PYTHON", "python3"))
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "gemm_bench"], cwd=ROOT, check=True)
    ours = [os.path.join(ROOT, "target", "release", "examples", "gemm_bench"), str(a.size)]
    peer = [a.python, "-c", PEER, str(a.size), str(a.threads)]
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
    res = {(who, p): [] for who in ("ours", "torch") for p in ("f32", "bf16")}
    for r in range(a.rounds):
        for who, cmd in ([("ours", ours), ("torch", peer)] if r % 2 == 0 else [("torch", peer), ("ours", ours)]):
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
            for p in ("f32", "bf16"):
                m = re.search(p + r"_gflops=([0-9.]+)", out)
                if m:
                    res[(who, p)].append(float(m.group(1)))
            print(f"round {r + 1} {who:5} {out.strip()}", flush=True)
    print()
    print(f"{'precision':9} {'ours GFLOP/s':>13} {'PyTorch GFLOP/s':>16}")
    for p in ("f32", "bf16"):
        o, t = res[("ours", p)], res[("torch", p)]
        fmt = lambda v: f"{statistics.median(v):.1f}" if v else "n/a"
        print(f"{p:9} {fmt(o):>13} {fmt(t):>16}")
    print(f"({a.size}x{a.size} products, {a.threads} threads, medians of {a.rounds} rounds; {cpu_flags()})")


if __name__ == "__main__":
    main()
