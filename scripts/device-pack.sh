#!/usr/bin/env bash
# Packs what a lent GPU needs besides the tree into .device/gantry.txz: the
# release binary and the plugins the training scripts load, stripped and
# xz-compressed (about 2 MiB). The tree that travels (tracked files and what
# is carried) must stay under 64 MiB, and the weights take most of it
# (tests/shipped.rs checks the tracked files leave room).
#
#   scripts/device-pack.sh     # then run(..., carry=[".device/gantry.txz"])
#
# On the machine, scripts/continue.sh (and the device-*.sh scripts) unpack it.
set -euo pipefail
cd "$(dirname "$0")/.."
export VIRTUAL_ENV=$PWD/.venv PATH=$PWD/.venv/bin:$PATH LIBTORCH_USE_PYTORCH=1
cargo build --release --workspace --quiet
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
strip -o "$tmp/gantry" target/release/gantry
for p in dataset_procedural_flowers dataset_reed sampler_gaussian; do
    strip -o "$tmp/libgantry_$p.so" "target/release/libgantry_$p.so"
done
mkdir -p .device
tar cJf .device/gantry.txz -C "$tmp" .
ls -la .device/gantry.txz
