#!/usr/bin/env bash
# Trains every preset and prints one Markdown row per preset (the README's results
# table), with the raw-input and random-init-encoder baselines under the same evaluator.
# The image presets share the R1 ConvNet and the full Fashion-MNIST split, so their two
# baselines are measured once, in the SimCLR run; CRD (a smaller student) and the series
# presets measure their own.
# Usage: scripts/preset-table.sh [OUT_DIR]   (about 4 minutes per image preset on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/table}
bin=${CONTRASTIVE_BIN:-./target/release/contrastive}
mkdir -p "$out"
baselines=(--set eval.baseline=true --set eval.random_init=true)
run() {
    local name=$1; shift
    rm -rf "${out:?}/$name"
    "$bin" train --quiet --config "configs/$name.toml" "$@" \
        --out "$out/$name" > "$out/$name.log" 2>&1 || { echo "| $name | failed: $(tail -1 "$out/$name.log") |"; return; }
    python3 - "$out/$name/metrics.jsonl" "$name" "$*" <<'PY'
import json, sys
last = [json.loads(l) for l in open(sys.argv[1]) if '"knn_top1"' in l][-1]
f = lambda k: "%.4f" % last[k] if last.get(k) is not None else "-"
print(f"| {sys.argv[2]} | {f('knn_top1')} / {f('linear_top1')} | {f('baseline_knn_top1')} / {f('baseline_linear_top1')} | {f('random_init_knn_top1')} / {f('random_init_linear_top1')} | `{sys.argv[3]}` |")
PY
}
echo "| preset | trained kNN / linear | raw input | random-init encoder | overrides |"
echo "|---|---|---|---|---|"
run simclr-fashion-mnist "${baselines[@]}"
for p in moco-v2 instdisc supcon triplet byol barlow-twins vicreg swav dcl dclw simsiam dim nnclr pcl; do
    run "$p-fashion-mnist" --set eval.baseline=false
done
run crd-fashion-mnist "${baselines[@]}" --set "keys.teacher=$out/simclr-fashion-mnist"
for p in cmc-basic-motions cmc-japanese-vowels cpc-osuleaf tcl-osuleaf; do
    run "$p" "${baselines[@]}"
done
