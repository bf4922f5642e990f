#!/usr/bin/env bash
# The learning-curve sweep on a lent GPU (README, "Learning curve"): `gantry
# bench learn` from scratch for each configuration, side by side, each line
# written to $OUT as it comes, so a sweep cut short still brings back what it
# measured. Nothing else runs. On the GPU machine, after copying the gantry
# binary and its plugin libraries into .device/:
#
#   STEPS=3000 EVERY=500 SWEEP_S=240 scripts/device-sweep.sh
#
# TE=FOLDER trains on another text encoder (the default is
# state/procedural-text-encoder with EXTRA="--grammar rich --g-ema 0.999",
# the captions it learned, and every line also read off G's moving average,
# which leaves training as it is; pass the other's grammar in EXTRA).
#
# CONFIGS holds one configuration a line, "name: extra bench-learn arguments";
# the default asks the open question of the checkerboard (README, "The
# checkerboard: how G upsamples"): the matching term with the paper's
# transposed convolutions, with resize-convolutions at every doubling, with
# bilinear ones, and with bilinear ones and D reading the batch's spread
# (--minibatch-std, against the bilinear G's loss of diversity: read the
# diverse_* fields), and with bilinear ones and G's matching term ranking
# every other picture's text (--match-negatives image, for the petal count
# and the centre), and with bilinear ones and D's wrong images siblings
# (--wrong sibling: each differs from its right image in one content
# attribute alone, so D must check the count and the centre), and with
# bilinear ones, siblings and D's three kinds of pair in one batch
# (--d-batches joint: D can no longer tell a batch of mismatched pairs by
# its statistics; joint alone and with --minibatch-std collapsed over z on
# the CPU, README, so they are left out), and with the real and wrong pairs
# in one batch and G's pictures in their own (--d-batches real-wrong) with
# siblings, and with D's joint layer normalised over each pair
# (--d-joint-norm pair: how a batch's pairs are matched no longer shows in
# its statistics, and G's pictures are still seen together below it), with
# and without siblings, and with G's mode-seeking term (--mode-seeking 1:
# G's two pictures of a text should differ as their z do), alone and with
# pair norm and siblings, and that combination with noise on G's text
# (--text-noise 0.5 and 0.25: does the gap to sentence forms no grammar has,
# the phrased_* fields, close without costing held-out colour?), and along
# the directions a picture's captions differ in (--text-noise 1 and 2
# --text-noise-along phrasings) and only where its captions that state the
# same attributes differ (--text-noise 1 --text-noise-along statements),
# and with half of G's texts read from its captions reworded as people type
# them (--reworded 0.5), and asked for one picture of a caption as written
# and reworded (--phrasing-consistency 10), three seeds each. At most 8 files come back from $OUT, so
# every configuration writes to the same two: its lines and errors, prefixed
# with its name, to $OUT/sweep.txt as they come, and its points to
# $OUT/sweep.jsonl (`scripts/learn-table.py --summary $OUT/sweep.jsonl`).
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=device-env.sh
. scripts/device-env.sh
DEV=${DEV:-cuda}
OUT=${OUT:-/tmp/out}
STEPS=${STEPS:-3000}
EVERY=${EVERY:-500}
SWEEP_S=${SWEEP_S:-240}
TE=${TE:-state/procedural-text-encoder}
EXTRA=${EXTRA:---grammar rich --g-ema 0.999}
CONFIGS=${CONFIGS:-"match4-s0: --match-loss 4 --seed 0
match4-s1: --match-loss 4 --seed 1
match4-s2: --match-loss 4 --seed 2
resize-s0: --match-loss 4 --upsampling resize --seed 0
resize-s1: --match-loss 4 --upsampling resize --seed 1
resize-s2: --match-loss 4 --upsampling resize --seed 2
bilinear-s0: --match-loss 4 --upsampling bilinear --seed 0
bilinear-s1: --match-loss 4 --upsampling bilinear --seed 1
bilinear-s2: --match-loss 4 --upsampling bilinear --seed 2
bilinear-mbstd-s0: --match-loss 4 --upsampling bilinear --minibatch-std --seed 0
bilinear-mbstd-s1: --match-loss 4 --upsampling bilinear --minibatch-std --seed 1
bilinear-mbstd-s2: --match-loss 4 --upsampling bilinear --minibatch-std --seed 2
bilinear-negimage-s0: --match-loss 4 --match-negatives image --upsampling bilinear --seed 0
bilinear-negimage-s1: --match-loss 4 --match-negatives image --upsampling bilinear --seed 1
bilinear-negimage-s2: --match-loss 4 --match-negatives image --upsampling bilinear --seed 2
bilinear-sibling-s0: --match-loss 4 --upsampling bilinear --wrong sibling --seed 0
bilinear-sibling-s1: --match-loss 4 --upsampling bilinear --wrong sibling --seed 1
bilinear-sibling-s2: --match-loss 4 --upsampling bilinear --wrong sibling --seed 2
bilinear-joint-sibling-s0: --match-loss 4 --upsampling bilinear --d-batches joint --wrong sibling --seed 0
bilinear-joint-sibling-s1: --match-loss 4 --upsampling bilinear --d-batches joint --wrong sibling --seed 1
bilinear-joint-sibling-s2: --match-loss 4 --upsampling bilinear --d-batches joint --wrong sibling --seed 2
bilinear-realwrong-sibling-s0: --match-loss 4 --upsampling bilinear --d-batches real-wrong --wrong sibling --seed 0
bilinear-realwrong-sibling-s1: --match-loss 4 --upsampling bilinear --d-batches real-wrong --wrong sibling --seed 1
bilinear-realwrong-sibling-s2: --match-loss 4 --upsampling bilinear --d-batches real-wrong --wrong sibling --seed 2
bilinear-pairnorm-s0: --match-loss 4 --upsampling bilinear --d-joint-norm pair --seed 0
bilinear-pairnorm-s1: --match-loss 4 --upsampling bilinear --d-joint-norm pair --seed 1
bilinear-pairnorm-s2: --match-loss 4 --upsampling bilinear --d-joint-norm pair --seed 2
bilinear-pairnorm-sibling-s0: --match-loss 4 --upsampling bilinear --d-joint-norm pair --wrong sibling --seed 0
bilinear-pairnorm-sibling-s1: --match-loss 4 --upsampling bilinear --d-joint-norm pair --wrong sibling --seed 1
bilinear-pairnorm-sibling-s2: --match-loss 4 --upsampling bilinear --d-joint-norm pair --wrong sibling --seed 2
bilinear-seeking-s0: --match-loss 4 --upsampling bilinear --mode-seeking 1 --seed 0
bilinear-seeking-s1: --match-loss 4 --upsampling bilinear --mode-seeking 1 --seed 1
bilinear-seeking-s2: --match-loss 4 --upsampling bilinear --mode-seeking 1 --seed 2
bilinear-pairnorm-sibling-seeking-s0: --match-loss 4 --upsampling bilinear --d-joint-norm pair --wrong sibling --mode-seeking 1 --seed 0
bilinear-pairnorm-sibling-seeking-s1: --match-loss 4 --upsampling bilinear --d-joint-norm pair --wrong sibling --mode-seeking 1 --seed 1
bilinear-pairnorm-sibling-seeking-s2: --match-loss 4 --upsampling bilinear --d-joint-norm pair --wrong sibling --mode-seeking 1 --seed 2
combo-textnoise05-s0: --match-loss 4 --upsampling bilinear --d-joint-norm pair --wrong sibling --mode-seeking 1 --text-noise 0.5 --seed 0
combo-textnoise05-s1: --match-loss 4 --upsampling bilinear --d-joint-norm pair --wrong sibling --mode-seeking 1 --text-noise 0.5 --seed 1
combo-textnoise05-s2: --match-loss 4 --upsampling bilinear --d-joint-norm pair --wrong sibling --mode-seeking 1 --text-noise 0.5 --seed 2
combo-textnoise025-s0: --match-loss 4 --upsampling bilinear --d-joint-norm pair --wrong sibling --mode-seeking 1 --text-noise 0.25 --seed 0
combo-textnoise025-s1: --match-loss 4 --upsampling bilinear --d-joint-norm pair --wrong sibling --mode-seeking 1 --text-noise 0.25 --seed 1
combo-textnoise025-s2: --match-loss 4 --upsampling bilinear --d-joint-norm pair --wrong sibling --mode-seeking 1 --text-noise 0.25 --seed 2
combo-phrasingnoise1-s0: --match-loss 4 --upsampling bilinear --d-joint-norm pair --wrong sibling --mode-seeking 1 --text-noise 1 --text-noise-along phrasings --seed 0
combo-phrasingnoise1-s1: --match-loss 4 --upsampling bilinear --d-joint-norm pair --wrong sibling --mode-seeking 1 --text-noise 1 --text-noise-along phrasings --seed 1
combo-phrasingnoise1-s2: --match-loss 4 --upsampling bilinear --d-joint-norm pair --wrong sibling --mode-seeking 1 --text-noise 1 --text-noise-along phrasings --seed 2
combo-phrasingnoise2-s0: --match-loss 4 --upsampling bilinear --d-joint-norm pair --wrong sibling --mode-seeking 1 --text-noise 2 --text-noise-along phrasings --seed 0
combo-phrasingnoise2-s1: --match-loss 4 --upsampling bilinear --d-joint-norm pair --wrong sibling --mode-seeking 1 --text-noise 2 --text-noise-along phrasings --seed 1
combo-phrasingnoise2-s2: --match-loss 4 --upsampling bilinear --d-joint-norm pair --wrong sibling --mode-seeking 1 --text-noise 2 --text-noise-along phrasings --seed 2
combo-statementnoise1-s0: --match-loss 4 --upsampling bilinear --d-joint-norm pair --wrong sibling --mode-seeking 1 --text-noise 1 --text-noise-along statements --seed 0
combo-statementnoise1-s1: --match-loss 4 --upsampling bilinear --d-joint-norm pair --wrong sibling --mode-seeking 1 --text-noise 1 --text-noise-along statements --seed 1
combo-statementnoise1-s2: --match-loss 4 --upsampling bilinear --d-joint-norm pair --wrong sibling --mode-seeking 1 --text-noise 1 --text-noise-along statements --seed 2
combo-reworded05-s0: --match-loss 4 --upsampling bilinear --d-joint-norm pair --wrong sibling --mode-seeking 1 --reworded 0.5 --seed 0
combo-reworded05-s1: --match-loss 4 --upsampling bilinear --d-joint-norm pair --wrong sibling --mode-seeking 1 --reworded 0.5 --seed 1
combo-reworded05-s2: --match-loss 4 --upsampling bilinear --d-joint-norm pair --wrong sibling --mode-seeking 1 --reworded 0.5 --seed 2
combo-consistency10-s0: --match-loss 4 --upsampling bilinear --d-joint-norm pair --wrong sibling --mode-seeking 1 --phrasing-consistency 10 --seed 0
combo-consistency10-s1: --match-loss 4 --upsampling bilinear --d-joint-norm pair --wrong sibling --mode-seeking 1 --phrasing-consistency 10 --seed 1
combo-consistency10-s2: --match-loss 4 --upsampling bilinear --d-joint-norm pair --wrong sibling --mode-seeking 1 --phrasing-consistency 10 --seed 2"}
mkdir -p "$OUT"
# Another text encoder (a model folder, or state/procedural-text-encoder,
# which holds the text side only).
if [ -n "${TE:-}" ]; then
    EXTRA="--text-encoder $TE $EXTRA"
fi
start=$(date +%s)
pids=()
while IFS=: read -r name args; do
    [ -n "$name" ] || continue
    # shellcheck disable=SC2086 # the arguments are words on purpose
    (timeout "$SWEEP_S" "$G" --device "$DEV" bench learn --steps "$STEPS" --every "$EVERY" \
        --jsonl "$OUT/sweep.jsonl" $args $EXTRA 2>&1 |
        sed -u "s/^/$name: /" >>"$OUT/sweep.txt") &
    pids+=($!)
done <<<"$CONFIGS"
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
echo "sweep done in $(($(date +%s) - start)) s (exit $status)"
while IFS=: read -r name _; do
    [ -n "$name" ] || continue
    echo "== $name"
    grep "^$name: learn " "$OUT/sweep.txt" | tail -n 3
    grep "^$name: .*error" "$OUT/sweep.txt" | tail -n 2
done <<<"$CONFIGS"
exit $status
