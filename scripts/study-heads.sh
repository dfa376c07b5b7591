#!/usr/bin/env bash
# The heads study of docs/studies.md: no head, a linear head, the 2-layer MLP of the
# presets, a 3-layer and a wider MLP on SimCLR; no head against the MLP on MoCo v2; one
# epoch on Fashion-MNIST each. The representation h is evaluated during training, the
# head's output z and the third block's pooled map afterwards by `contrastive eval --set
# eval.layer="z"` and `--set eval.stage=3`. Seven one-epoch runs and fourteen evaluations.
# usage: scripts/study-heads.sh [OUT (default runs/studies)]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/studies}
bin=target/release/contrastive
[ -x "$bin" ] || cargo build --release --locked
sweep_heads() {
    local preset=$1 dir=$2
    shift 2
    "$bin" sweep --config "configs/$preset-fashion-mnist.toml" --quiet \
        --set eval.baseline=false --set eval.random_init=false "$@" --out "$dir"
}
# SimCLR: no head, linear, the preset's 2-layer MLP, 3 layers, and 4x as wide
# MoCo v2: no head against the preset's MLP
for preset in simclr moco-v2; do
    dir="$out/heads-$preset"
    case $preset in
    simclr) sweep_heads "$preset" "$dir" --case 'head.kind="identity"' \
        --case 'head.kind="linear"' --case 'head.kind="mlp";head.depth=2' \
        --case 'head.kind="mlp";head.depth=3' --case 'head.kind="mlp";head.hidden=1024' ;;
    *) sweep_heads "$preset" "$dir" --case 'head.kind="identity"' \
        --case 'head.kind="mlp";head.depth=2' ;;
    esac
    for run in "$dir"/points/*/; do
        if [ ! -e "$run/eval-z.json" ]; then
            "$bin" eval "$run" --set 'eval.layer="z"' >/dev/null
            mv "$run/eval.json" "$run/eval-z.json"
        fi
        if [ ! -e "$run/eval-stage3.json" ]; then
            "$bin" eval "$run" --set eval.stage=3 >/dev/null
            mv "$run/eval.json" "$run/eval-stage3.json"
        fi
    done
done
