"""The peer's R1 reference (benches/peer/simclr_r1_reference.py) as a module, for the
PyTorch counterparts beside it: `from peer_r1 import r1, ROOT`."""
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location(
    "r1", os.path.join(ROOT, "benches", "peer", "simclr_r1_reference.py"))
r1 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(r1)


def sgd(model):
    """R1's optimiser, SGD with momentum and weight decay, at its base rate."""
    import torch
    lr0 = r1.BASE_LR * r1.BATCH / 256
    return torch.optim.SGD(model.parameters(), lr=lr0, momentum=r1.MOMENTUM, weight_decay=r1.WEIGHT_DECAY)


def batches(opt, n, epochs, seed=0):
    """R1's schedule: yields (step, total, image indices) for every batch of `epochs`
    shuffled epochs over `n` images (shuffling seed `SEED_SHUFFLE + 10 * seed`), after
    setting `opt`'s learning rate to the cosine decay of its initial one, per step."""
    import math
    import torch
    lr0 = opt.defaults["lr"]
    g_shuf = torch.Generator().manual_seed(r1.SEED_SHUFFLE + 10 * seed)
    steps = n // r1.BATCH
    total = steps * epochs
    step = 0
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g_shuf)
        for b in range(steps):
            for pg in opt.param_groups:
                pg["lr"] = lr0 * 0.5 * (1.0 + math.cos(math.pi * step / total))
            yield step, total, perm[b * r1.BATCH:(b + 1) * r1.BATCH]
            step += 1


def evaluate_h(encoder, xtr, ytr, xte, yte, mean, std):
    """R1's evaluation (kNN and linear probe) of the representation h of normalised images."""
    ntr, nte = (xtr - mean) / std, (xte - mean) / std
    return r1.evaluate(r1.extract(encoder, ntr), ytr, r1.extract(encoder, nte), yte)


def parse_and_load(p):
    """Adds R1's `--threads` and `--data-dir` to parser `p`, parses the command line, and
    loads Fashion-MNIST: `(args, xtr, ytr, xte, yte)`."""
    import torch
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-dir", default=os.path.join(ROOT, "data"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    r1.DATA_DIR = a.data_dir
    return (a, *r1.load_dataset("fmnist"))
