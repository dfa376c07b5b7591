#!/usr/bin/env python3
"""Projects data-parallel steps/s and scaling efficiency to N hosts (weak scaling: each
host keeps its batch b, the global batch is N*b) from constants measured on one host.
The formula is in docs/scale-out.md; the constants below come from:

  r_host  images/s of one 2-core host:        benches/scale_out.py (1 process x 2 threads)
  kappa   s per query-row x key-row of NT-Xent forward+backward at d = 128:
          cargo run --release --example loss_bench ntxent 4096  (8192 x 8192 rows)
  P       parameters: MB sent per step by benches/scale_out.py, less the gathered rows
  alpha   per-message latency; beta bandwidth: examples/collective_bench (veth, TCP),
          and the wire rates of 10 and 100 Gbit/s Ethernet

usage: benches/scale_model.py
"""

KAPPA = 322.56e-3 / 8192**2  # s per score entry, fwd+bwd, d = 128
D = 128
WORKLOADS = {
    # name: (images/s of one host at batch b, b, parameters)
    "R1 (convnet, b=256)": (1034.0, 256, 455e3),
    "ResNet step (b=128)": (252.0, 128, 1.31e6),
}
NETWORKS = {"10 Gbit/s": (30e-6, 1.25e9), "100 Gbit/s": (10e-6, 12.5e9)}


def step_seconds(n, r_host, b, params, alpha, beta, split=True):
    rows = 2 * b * n  # two views per image
    loss_one = KAPPA * (2 * b) ** 2
    t_enc = b / r_host - loss_one  # encoder, augmentation, optimiser
    t_loss = KAPPA * (2 * b) * rows if split else KAPPA * rows**2
    if n == 1:
        return t_enc + t_loss
    f = (n - 1) / n
    gather = (n - 1) * alpha + f * rows * (D + 5) * 4 / beta  # embeddings and tags
    grad_z = 2 * (n - 1) * alpha + 2 * f * rows * D * 4 / beta if split else 0.0
    grads = 2 * (n - 1) * alpha + 2 * f * params * 4 / beta  # ring all-reduce
    return t_enc + t_loss + gather + grad_z + grads


def main():
    print("| workload | network | hosts | global batch | steps/s | images/s | efficiency "
          "| efficiency, loss computed whole on every rank |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (r, b, p) in WORKLOADS.items():
        for net, (alpha, beta) in NETWORKS.items():
            one = step_seconds(1, r, b, p, alpha, beta)
            for n in (8, 32, 128):
                t = step_seconds(n, r, b, p, alpha, beta)
                whole = step_seconds(n, r, b, p, alpha, beta, split=False)
                print(f"| {name} | {net} | {n} | {n * b} | {1 / t:.2f} | {n * b / t:.0f} | "
                      f"{one / t:.2f} | {one / whole:.2f} |")


if __name__ == "__main__":
    main()
