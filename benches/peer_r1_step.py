#!/usr/bin/env python3
"""PyTorch side of the `r1` step benchmark: one SimCLR R1 training step on fixed random
inputs, using the model and NT-Xent of benches/peer/simclr_r1_reference.py itself.

usage: peer_r1_step.py PEER_DIR [warmup=3] [timed=17] [threads=2]
Prints a RESULT line in the format of benches/peer/torch_step_bench.py.
"""
import sys
import time

sys.path.insert(0, sys.argv[1])
import torch  # noqa: E402
import simclr_r1_reference as ref  # noqa: E402


def main():
    warmup = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    timed = int(sys.argv[3]) if len(sys.argv) > 3 else 17
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = ref.SimCLR()
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=ref.BASE_LR, momentum=ref.MOMENTUM,
                          weight_decay=ref.WEIGHT_DECAY)
    bs = ref.BATCH
    x = torch.randn(2 * bs, 1, ref.IMG, ref.IMG)
    losses = []

    def step():
        _, z = model(x)
        loss = ref.nt_xent(z)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(warmup):
        losses.append(step())
    t0 = time.perf_counter()
    for _ in range(timed):
        losses.append(step())
    dt = time.perf_counter() - t0
    sps = timed / dt
    print("losses:", " ".join(f"{v:.4f}" for v in losses))
    print(f"RESULT framework=torch-{torch.__version__} workload=r1 threads={threads} "
          f"steps_per_s={sps:.3f} images_per_s={sps * bs:.1f} step_ms={1000 / sps:.1f} "
          f"first_loss={losses[0]:.4f} last_loss={losses[-1]:.4f}")


if __name__ == "__main__":
    main()
