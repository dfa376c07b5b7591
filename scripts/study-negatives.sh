#!/usr/bin/env bash
# The negatives study of docs/studies.md: the number of negatives (in-batch: batch size;
# MoCo: queue length) against their hardness (Robinson et al.'s beta, Chuang et al.'s
# debiasing tau+) and the review's curriculum (beta rising from 0 over training), each a
# `contrastive sweep` of one epoch on Fashion-MNIST, one seed: thirteen one-epoch runs.
# usage: scripts/study-negatives.sh [OUT (default runs/studies)]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/studies}
bin=target/release/contrastive
[ -x "$bin" ] || cargo build --release --locked
common=(--set eval.baseline=false --set eval.random_init=false --quiet)
simclr=configs/simclr-fashion-mnist.toml
# quantity: 2N - 2 in-batch negatives (the learning rate scales with the batch)
"$bin" sweep --config "$simclr" "${common[@]}" --grid train.batch_size=64,256,1024 \
    --out "$out/negatives-batch"
# quantity: a queue of 16 to 65,536 earlier keys (MoCo v2)
"$bin" sweep --config configs/moco-v2-fashion-mnist.toml "${common[@]}" \
    --grid keys.queue_size=16,256,4096,65536 --out "$out/negatives-queue"
# quality: hard-negative weighting beta, with and without debiasing
"$bin" sweep --config "$simclr" "${common[@]}" --set 'loss.kind="debiased"' \
    --grid loss.beta=0,1 --grid loss.tau_plus=0,0.1 --out "$out/negatives-hardness"
# the curriculum: beta from 0 to 1 over training, against beta = 1 throughout
"$bin" sweep --config "$simclr" "${common[@]}" --set 'loss.kind="debiased"' \
    --set loss.beta=1 --set loss.tau_plus=0.1 --grid 'loss.beta_schedule="linear","cosine"' \
    --out "$out/negatives-curriculum"
