#!/usr/bin/env bash
# The learning-curve sweep on a lent GPU (README, "Learning curve"): `gantry
# bench learn` from scratch for each configuration, side by side, each line
# written to $OUT as it comes, so a sweep cut short still brings back what it
# measured. Nothing else runs. On the GPU machine, after copying the gantry
# binary and its plugin libraries into .device/:
#
#   STEPS=10000 EVERY=1000 SWEEP_S=420 scripts/device-sweep.sh
#
# TE=FOLDER trains on another text encoder (then pass its grammar in EXTRA,
# e.g. EXTRA="--grammar rich").
#
# CONFIGS holds one configuration a line, "name: extra bench-learn arguments".
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=device-env.sh
. scripts/device-env.sh
DEV=${DEV:-cuda}
OUT=${OUT:-/tmp/out}
STEPS=${STEPS:-10000}
EVERY=${EVERY:-1000}
SWEEP_S=${SWEEP_S:-420}
EXTRA=${EXTRA:-}
CONFIGS=${CONFIGS:-"raw: --conditioning raw
match-1: --conditioning raw --match-loss 1
match-4: --conditioning raw --match-loss 4
standardised: --conditioning standardised
one-hot: --conditioning one-hot"}
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
    timeout "$SWEEP_S" "$G" --device "$DEV" bench learn --steps "$STEPS" --every "$EVERY" \
        $args $EXTRA >"$OUT/sweep-$name.txt" 2>"$OUT/sweep-$name.err" &
    pids+=($!)
done <<<"$CONFIGS"
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
echo "sweep done in $(($(date +%s) - start)) s (exit $status)"
for f in "$OUT"/sweep-*.txt; do
    echo "== $(basename "$f" .txt)"
    grep '^learn ' "$f" | tail -n 3
    grep -h 'error' "${f%.txt}.err" | tail -n 2
done
exit $status
