#!/usr/bin/env bash
# The one script run on the lent GPU machine (see README, "Training"): GPU
# benchmarks beside PyTorch, the shipped models' training, their evaluation,
# and f16 exports brought back under $OUT. Expects .device/ to hold the
# gantry binary, its plugin libraries and oxford102.tgz.
set -uo pipefail
cd "$(dirname "$0")/.."
export GANTRY_DATA_DIR=/tmp/gd GANTRY_CONFIG_DIR=/tmp/gc GANTRY_THREADS=${GANTRY_THREADS:-2}
PY=${PY:-/opt/torch/.venv/bin/python}
export LD_LIBRARY_PATH=$($PY -c 'import torch, os; print(os.path.dirname(torch.__file__) + "/lib")')
G=$PWD/.device/gantry
DEV=${DEV:-cuda}
OUT=${OUT:-/tmp/out}
RUNS=${RUNS:-/tmp/runs}
mkdir -p "$RUNS" /tmp/ox "$OUT"
tar xzf .device/oxford102.tgz -C /tmp/ox
start=$(date +%s)

{
    nvidia-smi -L || true
    echo "## bench generate (ms per batch, text encoding included), preset reed"
    for d in cuda cpu; do for b in 1 64; do
        echo "$d batch $b: $($G --device $d bench generate --preset reed --batch $b --repeats 10 2>/dev/null)"
    done; done
    echo "## bench train: one GAN-INT-CLS step, batch 64, preset reed"
    echo "gantry cuda: $($G --device $DEV bench train --preset reed --batch 64 --steps ${BENCH_STEPS:-30} 2>/dev/null)"
    echo "pytorch cuda: $($PY bench/pytorch_gan_int_cls.py --device $DEV --batch 64 --steps ${BENCH_STEPS:-30} 2>/dev/null | tail -n 1)"
    echo "gantry cuda small: $($G --device $DEV bench train --preset small --batch 64 --steps ${BENCH_STEPS:-30} 2>/dev/null)"
} > "$RUNS/bench.txt" 2>&1
cat "$RUNS/bench.txt"
echo "bench took $(( $(date +%s) - start )) s"

GANTRY=$G RUNS=$RUNS OXFORD=/tmp/ox DEVICE=$DEV scripts/train-shipped.sh
echo "training done at $(( $(date +%s) - start )) s"

m="$RUNS/pf-gan-int-cls-style/model"
for k in 1 2; do
    $G --device auto generate "this flower has five round red petals and a yellow center" --seed 7 -n 4 -m "$m" -o "/tmp/gen$k" > /dev/null 2> "$RUNS/generate-auto.txt"
done
{
    echo "## --device auto with the trained model: $(cat "$RUNS/generate-auto.txt")"
    if diff -r /tmp/gen1 /tmp/gen2 > /dev/null; then echo "generate twice on $DEV: identical PNGs"; else echo "generate twice on $DEV: PNGs DIFFER"; fi
    echo "auto picks: $($G --device auto bench generate -m "$m" --batch 1 --repeats 3 2>&1 | head -n 1)"
} >> "$RUNS/bench.txt"
cp -r /tmp/gen1 "$RUNS/generated"

for r in "$RUNS"/pf-*-style; do
    $G --device $DEV eval "$r/model" --probe weights/probe > "$r.eval.txt" 2>&1 &
done
$G --device $DEV eval "$RUNS/ox-gan-int-cls-style/model" --dataset reed:/tmp/ox --classifier weights/oxford102-classifier > "$RUNS/ox-gan-int-cls-style.eval.txt" 2>&1 &
wait
tail -n 30 "$RUNS"/*.eval.txt
mkdir -p /tmp/ship
$G model export "$RUNS/pf-gan-int-cls-style/model" /tmp/ship/procedural-flowers --half
$G model export "$RUNS/ox-gan-int-cls-style/model" /tmp/ship/oxford102 --half
tar czf - -C /tmp/ship procedural-flowers | split -b 15M - "$OUT/pf.tgz."
tar czf - -C /tmp/ship oxford102 | split -b 15M - "$OUT/ox.tgz."
tar czf "$OUT/logs.tgz" -C "$RUNS" --exclude='*.safetensors' .
ls -la "$OUT"
echo "all done at $(( $(date +%s) - start )) s"
