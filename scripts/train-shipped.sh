#!/usr/bin/env bash
# Trains the models gantry ships, as they were trained: for procedural flowers
# and Oxford-102, the DS-SJE text encoder, then GAN-INT-CLS (and, on
# procedural flowers, the ablation gan / gan-cls / gan-int with the same
# wall-clock budget, run side by side), then the style encoder.
#
#   RUNS=runs PRESET=small DEVICE=cuda TE_MIN=1.25 GAN_MIN=4 STYLE_MIN=1 scripts/train-shipped.sh
#
# Every stage is time-boxed (--time-limit) and writes a checkpoint, so any
# stage can be continued later with the same command plus --resume.
set -euo pipefail
cd "$(dirname "$0")/.."

G=${GANTRY:-target/release/gantry}
RUNS=${RUNS:-runs}
OXFORD=${OXFORD:-../shared/datasets/oxford102}
PRESET=${PRESET:-small}
DEVICE=${DEVICE:-auto}
TE_MIN=${TE_MIN:-20}
GAN_MIN=${GAN_MIN:-60}
STYLE_MIN=${STYLE_MIN:-10}
VARIANTS=${VARIANTS:-gan-int-cls gan gan-cls gan-int}
LIMIT=${LIMIT:-}   # use at most this many images (smoke runs)
# Extra `train gan` arguments for every GAN, e.g. the conditioning the
# learning curve chose: GAN_ARGS="--fresh-noise --match-loss 4".
read -r -a gan_args <<< "${GAN_ARGS:-}"

mkdir -p "$RUNS"
limit=()
[ -n "$LIMIT" ] && limit=(--limit "$LIMIT")
gantry() { "$G" --device "$DEVICE" "$@"; }
pf=(--dataset procedural-flowers "${limit[@]}")
ox=(--dataset "reed:$OXFORD" "${limit[@]}")

echo "== text encoders ($TE_MIN min)"
# Procedural captions state more than the class (centre colour, petal count):
# match each caption against its own image so the embedding keeps them.
gantry train text-encoder "${pf[@]}" --preset "$PRESET" --match image --batch-classes 64 \
    --run "$RUNS/pf-te" --epochs 100000 --time-limit "$TE_MIN" > "$RUNS/pf-te.log" 2>&1 &
gantry train text-encoder "${ox[@]}" --preset "$PRESET" --run "$RUNS/ox-te" --epochs 100000 --time-limit "$TE_MIN" > "$RUNS/ox-te.log" 2>&1 &
wait
tail -n 3 "$RUNS/pf-te.log" "$RUNS/ox-te.log"

echo "== GANs ($GAN_MIN min, side by side)"
for v in $VARIANTS; do
    gantry train gan "${pf[@]}" --text-encoder "$RUNS/pf-te/model" --variant "$v" --preset "$PRESET" \
        "${gan_args[@]}" --run "$RUNS/pf-$v" --time-limit "$GAN_MIN" > "$RUNS/pf-$v.log" 2>&1 &
done
gantry train gan "${ox[@]}" --text-encoder "$RUNS/ox-te/model" --variant gan-int-cls --preset "$PRESET" \
    "${gan_args[@]}" --run "$RUNS/ox-gan-int-cls" --time-limit "$GAN_MIN" > "$RUNS/ox-gan-int-cls.log" 2>&1 &
wait
for v in $VARIANTS; do tail -n 2 "$RUNS/pf-$v.log"; done
tail -n 2 "$RUNS/ox-gan-int-cls.log"

echo "== style encoders ($STYLE_MIN min)"
for r in $(for v in $VARIANTS; do echo "pf-$v"; done) ox-gan-int-cls; do
    data=("${pf[@]}")
    [ "$r" = ox-gan-int-cls ] && data=("${ox[@]}")
    gantry train style-encoder "${data[@]}" --model "$RUNS/$r/model" --run "$RUNS/$r-style" \
        --steps 1000000 --time-limit "$STYLE_MIN" > "$RUNS/$r-style.log" 2>&1 &
done
wait
echo "== done: models in $RUNS/*-style/model"
