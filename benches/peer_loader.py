#!/usr/bin/env python3
"""PyTorch side of the loader benchmark: how fast torchvision's ImageFolder + DataLoader
turn a folder of JPEGs into batches of augmented views, the reference for our loader.

usage: python benches/peer_loader.py DIR [--workers 2] [--batch 256] [--size 224]
       [--batches 40] [--warmup 3] [--threads 1] [--views 2] [--jitter | --no-jitter]

Reads DIR/train/<class>/* (build one with scripts/make-image-folder.py), decodes each
image to RGB (ImageFolder's loader; grey is repeated), then applies, once per view,
SimCLR's pipeline: RandomResizedCrop(size, scale 0.2-1), horizontal flip, colour jitter
(0.4, 0.4, 0.4, 0.1) with probability 0.8, ToTensor, Normalize. Batches are shuffled,
the last incomplete one dropped, and the epoch restarts when the folder runs out. After
--warmup batches (worker start-up, first reads) it times --batches batches and prints one
JSON line:

  {"images_per_s", "views_per_s", "batches", "workers", "batch", "size", "seconds",
   "peak_rss_mb", "end_pss_mb", "views", "jitter", "threads"}

images_per_s counts source images (a batch of 256 is 256 images, 512 views).
peak_rss_mb is the largest sum of resident memory over this process and its descendants
(the workers), sampled every 100 ms, and at least this process's own ru_maxrss. The sum
counts the pages the forked workers share (torch's libraries) once per process, so
end_pss_mb gives the proportional set size (shared pages split between their users) of the
same processes after the timed batches; it is read once, as smaps_rollup costs ~20 ms a
process, which sampling would take from the loader.

Paired with our side, which takes the same arguments and prints the same keys:
  ./target/release/contrastive data bench DIR --workers 2 --batch 256 --size 224 --batches 40
  python benches/peer_loader.py DIR --workers 2 --batch 256 --size 224 --batches 40
Run them one after the other on an idle host and compare within the run.
"""
import argparse
import json
import os
import resource
import threading
import time

import torch
import torchvision.transforms as T
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet, as SimCLR uses
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


class Views:
    """Applies `transform` `n` times to one image, so each sample is n independent views
    (SimCLR's two-crop wrapper)."""

    def __init__(self, transform, n):
        self.transform, self.n = transform, n

    def __call__(self, img):
        return [self.transform(img) for _ in range(self.n)]


def descendants(root):
    """Pids of every process below `root` (workers may be grandchildren under forkserver)."""
    children = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # exited while we looked
        children.setdefault(ppid, []).append(int(pid))
    out, todo = [], [root]
    while todo:
        kids = children.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def rss_kb(pid):
    """Resident set size of one process in KiB; 0 once it has exited."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_KB
    except OSError:
        return 0


def pss_kb(pid):
    """Proportional set size of one process in KiB; 0 where smaps_rollup is unreadable."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return next((int(line.split()[1]) for line in f if line.startswith("Pss:")), 0)
    except OSError:
        return 0


class PeakMemory(threading.Thread):
    """Samples the summed RSS of this process and its descendants until stopped, keeping
    the peak. Walking /proc costs ~2 ms and one statm ~30 us, so the tree is rescanned
    every tick only until `procs` processes are seen (the workers start with the first
    batch), then once a second."""

    def __init__(self, procs, interval=0.1, rescan=10):
        super().__init__(daemon=True)
        self.procs, self.interval, self.rescan, self.peak = procs, interval, rescan, 0
        self.done = threading.Event()

    def sample(self, pids):
        self.peak = max(self.peak, sum(rss_kb(p) for p in pids))

    def run(self):
        me, tick, pids = os.getpid(), 0, []
        while not self.done.is_set():
            if len(pids) < self.procs or tick % self.rescan == 0:
                pids = [me] + descendants(me)
            self.sample(pids)
            tick += 1
            self.done.wait(self.interval)

    def stop(self):
        """(peak RSS, PSS now) of the tree in MiB, after a last sample."""
        self.done.set()
        self.join()
        pids = [os.getpid()] + descendants(os.getpid())
        self.sample(pids)
        self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return max(self.peak, self_kb) / 1024, sum(pss_kb(p) for p in pids) / 1024


def batches_forever(loader):
    """Batches across epochs; each new epoch reshuffles (the workers persist)."""
    while True:
        yield from loader


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", help="folder with train/<class>/ images")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batches", type=int, default=40, help="timed batches")
    ap.add_argument("--warmup", type=int, default=3, help="untimed batches first")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of this process")
    ap.add_argument("--views", type=int, default=2)
    ap.add_argument("--jitter", action=argparse.BooleanOptionalAction, default=True)
    opt = ap.parse_args()
    torch.set_num_threads(opt.threads)

    ops = [T.RandomResizedCrop(opt.size, scale=(0.2, 1.0)), T.RandomHorizontalFlip()]
    if opt.jitter:
        ops.append(T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8))
    ops += [T.ToTensor(), T.Normalize(MEAN, STD)]
    data = ImageFolder(os.path.join(opt.dir, "train"), transform=Views(T.Compose(ops), opt.views))
    if len(data) < opt.batch:
        raise SystemExit(f"error: {len(data)} images, fewer than one batch of {opt.batch}")
    extra = dict(persistent_workers=True, prefetch_factor=2) if opt.workers > 0 else {}
    loader = DataLoader(data, batch_size=opt.batch, shuffle=True, num_workers=opt.workers,
                        drop_last=True, **extra)

    memory = PeakMemory(procs=1 + opt.workers)
    memory.start()
    it = batches_forever(loader)
    for _ in range(opt.warmup):
        next(it)
    start = time.perf_counter()
    for _ in range(opt.batches):
        views, _labels = next(it)
        assert len(views) == opt.views and views[0].shape[0] == opt.batch
    seconds = time.perf_counter() - start
    peak_rss, end_pss = memory.stop()

    images = opt.batches * opt.batch
    print(json.dumps({
        "images_per_s": round(images / seconds, 1),
        "views_per_s": round(images * opt.views / seconds, 1),
        "batches": opt.batches, "workers": opt.workers, "batch": opt.batch,
        "size": opt.size, "seconds": round(seconds, 3),
        "peak_rss_mb": round(peak_rss, 1), "end_pss_mb": round(end_pss, 1),
        "views": opt.views, "jitter": opt.jitter, "threads": opt.threads,
    }))


if __name__ == "__main__":
    main()
