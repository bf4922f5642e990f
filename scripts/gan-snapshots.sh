#!/usr/bin/env bash
# GAN training in time-boxed chunks with a measured snapshot after each, so
# that the best checkpoint can be picked (GAN training oscillates: the last
# checkpoint is not always the best).
#
#   scripts/gan-snapshots.sh RUN CHUNK_MIN N -- <train gan arguments, without --run/--resume/--time-limit>
#
# Each chunk resumes RUN (or starts it), copies RUN/model to RUN-snap-STEP,
# measures it with `gantry eval --dry-run` (1,000 renders) into
# RUN-snap-STEP.txt, and appends the content rows to RUN.summary.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 4 ] && [ "$4" = "--" ] || { sed -n 2,11p "$0"; exit 2; }
RUN=$1; CHUNK=$2; N=$3; shift 4
G=${GANTRY:-target/release/gantry}
for _ in $(seq 1 "$N"); do
    resume=()
    [ -f "$RUN/checkpoint.safetensors" ] && resume=(--resume)
    "$G" train gan "$@" --run "$RUN" "${resume[@]}" --time-limit "$CHUNK" >> "$RUN.log" 2>&1
    step=$(tail -n 1 "$RUN/losses.jsonl" | sed 's/.*"step":\([0-9]*\).*/\1/')
    rm -rf "$RUN-snap-$step"
    cp -r "$RUN/model" "$RUN-snap-$step"
    "$G" eval "$RUN-snap-$step" --count 1000 --queries 100 --dry-run > "$RUN-snap-$step.txt" 2>&1
    { echo "== step $step $(date)"; grep -E "content_|embedding_reads" "$RUN-snap-$step.txt"; } >> "$RUN.summary"
done
