#!/usr/bin/env bash
# Generation speed, caption to pixels: gantry (G folded, as it draws), gantry
# with G unfolded (as trained: the before of the folding), and PyTorch eager
# (bench/pytorch_generate.py: the same text encoder, G and weights; and again
# with gantry's allocator setting for drawing), taking
# turns in one run on one machine so that the ratios compare like with like.
#
#   bench/generate.sh [MODEL] [THREADS] [ROUNDS]
#
# MODEL defaults to weights/procedural-flowers, THREADS to 2 (both programs),
# ROUNDS to 3; each line is the median of 20 timed batches after 3 untimed.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-weights/procedural-flowers}
threads=${2:-2}
rounds=${3:-3}
gantry=${GANTRY:-target/release/gantry}
python=${PYTHON:-.venv/bin/python}
[ -x "$gantry" ] || { echo "no $gantry: cargo build --release first (or set GANTRY)" >&2; exit 1; }
[ -d "$model" ] || { echo "no model folder $model" >&2; exit 1; }
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-$($python -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null)}
# gantry keeps freed memory while it draws on the CPU (host/allocator.rs,
# keep_drawing_memory); pytorch_kept_ms is PyTorch given the same setting.
drawing_malloc=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456
echo "# $model, $threads threads, $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for round in $(seq "$rounds"); do
    for batch in 1 64; do
        folded=$(GANTRY_THREADS=$threads "$gantry" -m "$model" bench generate --batch "$batch" 2>/dev/null)
        unfolded=$(GANTRY_THREADS=$threads "$gantry" -m "$model" bench generate --batch "$batch" --unfolded 2>/dev/null)
        pytorch=$("$python" -W ignore bench/pytorch_generate.py "$model" --batch "$batch" --threads "$threads" 2> >(grep -v -e NumPy -e _conversion_method_template >&2))
        kept=$(GLIBC_TUNABLES=$drawing_malloc "$python" -W ignore bench/pytorch_generate.py "$model" --batch "$batch" --threads "$threads" 2> >(grep -v -e NumPy -e _conversion_method_template >&2))
        echo "round=$round batch=$batch gantry ${folded} gantry_unfolded ${unfolded#ms_per_batch=} pytorch ${pytorch##*=} pytorch_kept ${kept##*=}" |
            sed 's/gantry ms_per_batch=/gantry_ms=/; s/gantry_unfolded /unfolded_ms=/; s/pytorch /pytorch_ms=/; s/pytorch_kept /pytorch_kept_ms=/'
    done
done
