#!/usr/bin/env bash
# The invariance study of docs/studies.md: R1 (SimCLR on Fashion-MNIST, one epoch) with
# its brightness/contrast jitter and without it, probed side by side by
# `contrastive probe invariance` on 2,000 test images. Two one-epoch runs and one probe.
# usage: scripts/study-invariance.sh [OUT (default runs/studies)]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/studies}
bin=target/release/contrastive
[ -x "$bin" ] || cargo build --release --locked
"$bin" sweep --config configs/simclr-fashion-mnist.toml --quiet \
    --set eval.baseline=false --set eval.random_init=false \
    --grid views.augment.jitter_p=0.8,0 --out "$out/invariance"
points="$out/invariance/points"
"$bin" probe invariance "$points/views.augment.jitter_p-0.8" \
    --compare "$points/views.augment.jitter_p-0" --out "$out/invariance/probe"
