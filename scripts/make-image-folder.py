#!/usr/bin/env python3
"""Builds a folder (or WebDataset shards) of real JPEG/PNG images from the IDX files
`contrastive data fetch` puts under data/, so the image-folder loader can be benchmarked
and tested on files a decoder has to work for, without downloading anything else.

usage: python3 scripts/make-image-folder.py --idx data/fashion-mnist --out DIR
       [--size 224] [--rgb | --grey] [--tint] [--mixed-sizes] [--limit N] [--test-limit N]
       [--format jpeg|png] [--quality 90] [--tar SHARD_SIZE] [--corrupt K] [--procs P]

Folder layout: DIR/train/<label>/<index:05d>.jpg and DIR/test/<label>/<index:05d>.jpg,
labels 0..9, index the image's position in its IDX split. With --tar N: DIR/train-000000.tar,
DIR/train-000001.tar, ..., DIR/test-000000.tar, N samples a shard, each sample
`<index:06d>.jpg` plus `<index:06d>.cls` (the label as ASCII).

- --size S resizes the 28x28 image to SxS (bicubic); 28 keeps it.
- --tint (RGB only) multiplies the grey level g by a colour c and fills the background with
  another: out = g * c + (1 - g) * b, c uniform in [0.5, 1], b in [0, 0.25] per channel,
  drawn from a generator seeded by (split, index), so every image has its own colours.
- --mixed-sizes makes every 7th image (index % 7 == 6) (3S/4) wide and S high.
- --corrupt K truncates K train images (chosen by a fixed seed) to their first 100 bytes,
  and lists them in DIR/corrupted.txt, for tests of unreadable files.

Needs only Pillow (Debian: python3-pil; else `pip install pillow`). The output is the same
bytes for the same arguments and Pillow build: no numpy, no time stamps (tar members have
mtime 0 and no owner), and the work is split in a fixed order.
"""
import argparse
import gzip
import io
import os
import random
import struct
import sys
import tarfile
import time
from multiprocessing import Pool

from PIL import Image

SPLITS = (("train", "train"), ("test", "t10k"))  # (our name, IDX file prefix)
CORRUPT_SEED = 0xC0FFEE
CORRUPT_BYTES = 100


def read_idx(path):
    """The payload of an IDX file (plain or .gz) and its dimensions."""
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            with (gzip.open if p.endswith(".gz") else open)(p, "rb") as f:
                data = f.read()
            break
    else:
        sys.exit(f"error: neither {path} nor {path}.gz exists")
    if data[:2] != b"\0\0" or data[2] != 0x08:
        sys.exit(f"error: {path}: not an unsigned-byte IDX file")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return data[4 + 4 * ndim:], dims


def load_split(idx_dir, prefix, limit):
    """(raw 28x28 bytes, label) for the first `limit` images of one split."""
    pixels, (n, h, w) = read_idx(os.path.join(idx_dir, f"{prefix}-images-idx3-ubyte"))
    labels, (m,) = read_idx(os.path.join(idx_dir, f"{prefix}-labels-idx1-ubyte"))
    if (h, w) != (28, 28) or n != m:
        sys.exit(f"error: {idx_dir}: expected N 28x28 images and N labels, got {n}x{h}x{w}, {m}")
    n = n if limit is None else min(n, limit)
    return [(pixels[i * 784:(i + 1) * 784], labels[i]) for i in range(n)]


def tint_tables(split, index):
    """Per-channel lookup tables for out = g * c + (1 - g) * b, g the grey level in [0, 1]."""
    rng = random.Random(f"{split}/{index}")  # str seeds hash deterministically (SHA-512)
    colour = [rng.uniform(0.5, 1.0) for _ in range(3)]
    back = [rng.uniform(0.0, 0.25) for _ in range(3)]
    return [[round(255 * (v / 255 * c + (1 - v / 255) * b)) for v in range(256)]
            for c, b in zip(colour, back)]


def encode(task):
    """Renders one image and returns its encoded bytes (folder mode: writes them, returns
    the count)."""
    split, index, raw, label, opt, corrupt, path = task
    img = Image.frombytes("L", (28, 28), raw)
    width = opt.size * 3 // 4 if opt.mixed_sizes and index % 7 == 6 else opt.size
    if (width, opt.size) != (28, 28):
        img = img.resize((width, opt.size), Image.BICUBIC)
    if opt.rgb:
        if opt.tint:
            img = Image.merge("RGB", [img.point(t) for t in tint_tables(split, index)])
        else:
            img = img.convert("RGB")
    buf = io.BytesIO()
    if opt.format == "jpeg":
        # no optimize/progressive: the plain baseline JPEG every decoder reads
        img.save(buf, "JPEG", quality=opt.quality)
    else:
        img.save(buf, "PNG", compress_level=6)
    data = buf.getvalue()
    if corrupt:
        data = data[:CORRUPT_BYTES]
    if path is None:
        return data
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


def tar_member(tar, name, data):
    """Adds `data` as `name` with fixed metadata, so equal inputs give equal shards."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--idx", required=True, help="folder of the IDX files (plain or .gz)")
    ap.add_argument("--out", required=True, help="output folder (must be absent or empty)")
    ap.add_argument("--size", type=int, default=224)
    colour = ap.add_mutually_exclusive_group()
    colour.add_argument("--rgb", dest="rgb", action="store_true", default=True)
    colour.add_argument("--grey", dest="rgb", action="store_false")
    ap.add_argument("--tint", action="store_true", help="per-image colours (needs --rgb)")
    ap.add_argument("--mixed-sizes", action="store_true", help="every 7th image (3S/4) x S")
    ap.add_argument("--limit", type=int, help="first N train images")
    ap.add_argument("--test-limit", type=int, help="first N test images")
    ap.add_argument("--format", choices=("jpeg", "png"), default="jpeg")
    ap.add_argument("--quality", type=int, default=90, help="JPEG quality")
    ap.add_argument("--tar", type=int, metavar="SHARD_SIZE", help="WebDataset shards")
    ap.add_argument("--corrupt", type=int, default=0, metavar="K")
    ap.add_argument("--procs", type=int, default=os.cpu_count() or 1)
    opt = ap.parse_args()
    if opt.tint and not opt.rgb:
        ap.error("--tint needs --rgb")
    if opt.size < 1 or (opt.tar is not None and opt.tar < 1) or opt.procs < 1:
        ap.error("--size, --tar and --procs must be positive")
    if os.path.isdir(opt.out) and os.listdir(opt.out):
        sys.exit(f"error: {opt.out} is not empty; remove it first")

    start = time.time()
    ext = "jpg" if opt.format == "jpeg" else "png"
    splits = {name: load_split(opt.idx, prefix, opt.test_limit if name == "test" else opt.limit)
              for name, prefix in SPLITS}
    k = min(opt.corrupt, len(splits["train"]))
    corrupt = set(random.Random(CORRUPT_SEED).sample(range(len(splits["train"])), k))
    # the options the workers need, without the unpicklable parser state
    wopt = argparse.Namespace(**{key: getattr(opt, key) for key in
                                 ("size", "rgb", "tint", "mixed_sizes", "format", "quality")})

    os.makedirs(opt.out, exist_ok=True)
    files = total = 0
    pool = Pool(opt.procs) if opt.procs > 1 else None

    def run(tasks):
        """Encodes in task order (imap keeps it), so shards are filled the same each time."""
        return pool.imap(encode, tasks, chunksize=64) if pool else map(encode, tasks)

    for split, items in splits.items():
        flagged = corrupt if split == "train" else set()
        if opt.tar is None:
            for label in sorted({lab for _, lab in items}):
                os.makedirs(os.path.join(opt.out, split, str(label)), exist_ok=True)
            tasks = ((split, i, raw, lab, wopt, i in flagged,
                      os.path.join(opt.out, split, str(lab), f"{i:05d}.{ext}"))
                     for i, (raw, lab) in enumerate(items))
            for size in run(tasks):
                files, total = files + 1, total + size
            continue
        tasks = ((split, i, raw, lab, wopt, i in flagged, None)
                 for i, (raw, lab) in enumerate(items))
        tar = None
        for i, data in enumerate(run(tasks)):
            if i % opt.tar == 0:
                if tar:
                    tar.close()
                tar = tarfile.open(os.path.join(opt.out, f"{split}-{i // opt.tar:06d}.tar"),
                                   "w", format=tarfile.USTAR_FORMAT)
                files += 1
            tar_member(tar, f"{i:06d}.{ext}", data)
            tar_member(tar, f"{i:06d}.cls", str(items[i][1]).encode())
        if tar:
            tar.close()
    if pool:
        pool.close()
        pool.join()
    if opt.tar is not None:
        total = sum(os.path.getsize(os.path.join(opt.out, f))
                    for f in os.listdir(opt.out) if f.endswith(".tar"))
    if corrupt:
        with open(os.path.join(opt.out, "corrupted.txt"), "w") as f:
            for i in sorted(corrupt):
                lab = splits["train"][i][1]
                f.write(f"train/{lab}/{i:05d}.{ext}\n" if opt.tar is None
                        else f"train-{i // opt.tar:06d}.tar:{i:06d}.{ext}\n")
    n = sum(len(v) for v in splits.values())
    print(f"{opt.out}: {n} images ({k} truncated) in {files} files, {total} bytes "
          f"({total / 2**20:.1f} MiB), {time.time() - start:.1f} s")


if __name__ == "__main__":
    main()
