#!/usr/bin/env python3
"""PyTorch side of examples/step_bench.rs: one contrastive training step on fixed random
inputs, in f32 or under torch.autocast("cpu", dtype=torch.bfloat16).

usage: peer_step.py PEER_DIR <resnet|resnet18|mlp|r1> [warmup=3] [timed=17] [threads=2] [f32|bf16]

Workloads: `resnet` and `mlp` are the models of PEER_DIR/torch_step_bench.py, `r1` the
model and NT-Xent of PEER_DIR/simclr_r1_reference.py, and `resnet18` the anchors' SimCLR
step: torchvision's ResNet-18 with the CIFAR stem (3x3 stem convolution, no max-pool) as
solo-learn and lightly build it, lightly's SimCLR head for it (512-512-128 with batch
norm), batch 256 of 32x32 RGB, each view its own forward pass. Under bf16 the encoder
and head run in autocast and the loss in f32 (the embeddings are cast back first), as in
step_bench. Prints a RESULT line in the format of torch_step_bench.py.
"""
import sys
import time

sys.path.insert(0, sys.argv[1])
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import simclr_r1_reference as r1  # noqa: E402
import torch_step_bench as peer  # noqa: E402


def resnet18():
    import torchvision

    net = torchvision.models.resnet18()
    net.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    net.maxpool = nn.Identity()
    net.fc = nn.Identity()
    head = nn.Sequential(nn.Linear(512, 512, bias=False), nn.BatchNorm1d(512), nn.ReLU(),
                         nn.Linear(512, 128))
    return nn.Sequential(net, head)


def workload(which):
    """(model, batch, views as tensors, loss of the embeddings, optimiser settings)."""
    if which == "r1":
        model = r1.SimCLR()
        x = torch.randn(2 * r1.BATCH, 1, r1.IMG, r1.IMG)
        return (lambda xs: model(xs[0])[1]), model, r1.BATCH, [x], r1.nt_xent, \
            dict(lr=r1.BASE_LR, momentum=r1.MOMENTUM, weight_decay=r1.WEIGHT_DECAY)
    if which == "resnet18":
        model, bs, shape, temp, opt = resnet18(), 256, (3, 32, 32), 0.5, \
            dict(lr=0.06, momentum=0.9, weight_decay=5e-4)
    elif which == "resnet":
        model, bs, shape, temp, opt = peer.ResNet(), 128, (3, 32, 32), peer.TEMP, \
            dict(lr=peer.LR, momentum=peer.MOMENTUM)
    elif which == "mlp":
        model, bs, shape, temp, opt = peer.Mlp(), 512, (784,), peer.TEMP, \
            dict(lr=peer.LR, momentum=peer.MOMENTUM)
    else:
        sys.exit(f"unknown workload {which}: expected resnet, resnet18, mlp or r1")
    xs = [torch.randn(bs, *shape), torch.randn(bs, *shape)]
    return (lambda xs: torch.cat([model(xs[0]), model(xs[1])], 0)), model, bs, xs, \
        (lambda z: peer.nt_xent(z[:bs], z[bs:], temp)), opt


def main():
    which = sys.argv[2]
    warmup = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    timed = int(sys.argv[4]) if len(sys.argv) > 4 else 17
    threads = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    precision = sys.argv[6] if len(sys.argv) > 6 else "f32"
    if precision not in ("f32", "bf16"):
        sys.exit(f"unknown precision {precision}: expected f32 or bf16")
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    embed, model, bs, xs, loss_of, opt_args = workload(which)
    model.train()
    opt = torch.optim.SGD(model.parameters(), **opt_args)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            z = embed(xs)
        loss = loss_of(z.float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    losses = [step() for _ in range(warmup)]
    t0 = time.perf_counter()
    losses += [step() for _ in range(timed)]
    sps = timed / (time.perf_counter() - t0)
    print("losses:", " ".join(f"{v:.4f}" for v in losses))
    print(f"RESULT framework=torch-{torch.__version__} workload={which} precision={precision} "
          f"threads={threads} steps_per_s={sps:.3f} images_per_s={sps * bs:.1f} "
          f"step_ms={1000 / sps:.1f} first_loss={losses[0]:.4f} last_loss={losses[-1]:.4f}")


if __name__ == "__main__":
    main()
