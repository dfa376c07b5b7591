#!/usr/bin/env bash
# Soak test of run directories (not in CI): a short SimCLR run is stopped again and again
# at random moments -- kill -9 of `train` and of `train --resume` (the resume rewrites
# metrics.jsonl and removes stale files first, so early kills land there), SIGINT and
# SIGTERM at random steps, and a full disk (a small tmpfs, root only) -- and resumed each
# time. At the end its metrics must equal an uninterrupted run's, record for record.
#
# usage: scripts/soak.sh [CYCLES=20] [BIN=target/release/contrastive]
# needs: the release binary and data/fashion-mnist (the README's first command fetches it)
set -euo pipefail
cd "$(dirname "$0")/.."
cycles=${1:-20}
bin=${2:-target/release/contrastive}
work=$(mktemp -d)
trap 'umount "$work/full" 2>/dev/null || true; rm -rf "$work"' EXIT
sets=(--set data.dir="$PWD/data/fashion-mnist" --set data.limit=2048 --set train.batch_size=128
      --set train.epochs=3 --set train.checkpoint_every=5 --set eval.linear_epochs=2
      --set eval.test_limit=500 --set eval.baseline=false)
train() { "$bin" train --quiet --config configs/simclr-fashion-mnist.toml "${sets[@]}" --out "$1"; }
# records without wall-clock fields
records() {
    python3 -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l); r.pop("epoch_seconds", None); r.pop("images_per_s", None); print(json.dumps(r, sort_keys=True))' "$1/metrics.jsonl"
}
finished() { [ -f "$1/metrics.jsonl" ] && grep -q knn_top1 "$1/metrics.jsonl" && tail -1 "$1/metrics.jsonl" | grep -q linear_top1; }

train "$work/want" >/dev/null
records "$work/want" >"$work/want.txt"
echo "uninterrupted: $(wc -l <"$work/want.txt") records"

run="$work/run"
kills=0 ints=0 terms=0 resumes=0
for ((i = 1; i <= cycles; i++)); do
    rm -rf "$run"
    started=0
    while ! finished "$run"; do
        if [ "$started" = 0 ]; then
            train "$run" >/dev/null 2>&1 & pid=$!
            started=1
        else
            "$bin" train --quiet --resume "$run" >/dev/null 2>&1 & pid=$!
            resumes=$((resumes + 1))
        fi
        # a random moment: anywhere from the start (the resume's own housekeeping) to
        # a few seconds in
        sleep "$(python3 -c 'import random; print(random.choice([0.01, 0.05, 0.2]) + random.random() * 3)')"
        case $((RANDOM % 3)) in
            0) sig=KILL; kills=$((kills + 1)) ;;
            1) sig=INT; ints=$((ints + 1)) ;;
            2) sig=TERM; terms=$((terms + 1)) ;;
        esac
        kill -s "$sig" "$pid" 2>/dev/null || true
        set +e
        wait "$pid"
        status=$?
        set -e
        case "$status" in 0 | 1 | 130 | 137 | 143) ;; *) echo "cycle $i: exit $status after SIG$sig"; exit 1 ;; esac
        if [ ! -f "$run/config.toml" ]; then
            rm -rf "$run"
            started=0
        fi
    done
    if ! diff -q <(records "$run") "$work/want.txt" >/dev/null; then
        echo "cycle $i: metrics differ from the uninterrupted run"
        diff <(records "$run") "$work/want.txt" | head
        exit 1
    fi
    echo "cycle $i: equal ($kills kill -9, $ints SIGINT, $terms SIGTERM, $resumes resumes so far)"
done

if [ "$(id -u)" = 0 ]; then
    # a disk that fills up mid-run: the run fails with a one-line error, and once there
    # is room again it resumes to the same records
    mkdir -p "$work/full"
    mount -t tmpfs -o size=1500k tmpfs "$work/full"
    set +e
    out=$(train "$work/full/run" 2>&1)
    status=$?
    set -e
    echo "full disk: exit $status: $(echo "$out" | tail -1)"
    [ "$status" = 1 ] || { echo "expected a one-line error"; exit 1; }
    mount -o remount,size=64m "$work/full"
    "$bin" train --quiet --resume "$work/full/run" >/dev/null
    diff -q <(records "$work/full/run") "$work/want.txt" && echo "full disk: resumed equal"
fi
echo "soak passed: $cycles cycles, $kills kill -9, $ints SIGINT, $terms SIGTERM, $resumes resumes"
