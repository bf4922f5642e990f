#!/usr/bin/env bash
# Training speed: one GAN-INT-CLS step (D and G updates, batch 64 + 32
# interpolated), gantry (`gantry bench train`) and PyTorch eager
# (bench/pytorch_gan_int_cls.py: the same architecture and step), taking turns
# in one run on one machine so that the ratio compares like with like.
#
#   bench/train.sh [THREADS] [ROUNDS] [STEPS]
#
# THREADS defaults to 2 (both programs), ROUNDS to 3, STEPS to 10 timed steps
# after 2 untimed. The preset is reed (the PyTorch script's only one).
# GANTRY=path/to/gantry times another build (e.g. an older one, for a before).
# UPSAMPLING=resize (or resize-last, bilinear) times both with that --upsampling.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
rounds=${2:-3}
steps=${3:-10}
gantry=${GANTRY:-target/release/gantry}
python=${PYTHON:-.venv/bin/python}
upsampling=${UPSAMPLING:-transposed}
[ -x "$gantry" ] || { echo "no $gantry: cargo build --release first (or set GANTRY)" >&2; exit 1; }
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-$($python -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null)}
echo "# reed, upsampling $upsampling, batch 64, $threads threads, $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for round in $(seq "$rounds"); do
    ours=$(GANTRY_THREADS=$threads "$gantry" --device cpu bench train --preset reed --upsampling "$upsampling" --batch 64 --steps "$steps" 2>/dev/null)
    theirs=$("$python" -W ignore bench/pytorch_gan_int_cls.py --upsampling "$upsampling" --batch 64 --steps "$steps" --threads "$threads" 2> >(grep -v -e NumPy -e _conversion_method_template >&2) | tail -n 1)
    echo "round=$round gantry_images_per_s=${ours#images_per_s=} pytorch_images_per_s=${theirs#images_per_s=}"
done
