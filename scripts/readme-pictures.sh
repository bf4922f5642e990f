#!/usr/bin/env bash
# Makes the pictures in the README from the shipped models (CPU is fine):
#   scripts/readme-pictures.sh            -> docs/img/*.png
set -euo pipefail
cd "$(dirname "$0")/.."
G=${GANTRY:-target/release/gantry}
OUT=docs/img
OXFORD=${OXFORD:-../shared/datasets/oxford102}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$OUT"
run() { "$G" --device cpu "$@" > /dev/null; }

# Captions to images: four seeds each.
n=0
for caption in \
    "this flower has five round red petals and a yellow center" \
    "a flower with eight thin blue petals and a black center" \
    "this flower has four pointed white petals and a brown center" \
    "a purple flower with six round petals"; do
    n=$((n + 1))
    run generate "$caption" -m procedural-flowers -n 4 --seed 1 -o "$tmp/gen" --sheet "$OUT/pf-caption-$n.png"
done
run interp "a flower with round red petals" "a flower with round blue petals" --steps 8 --seed 3 -m procedural-flowers -o "$tmp/i" --sheet "$OUT/pf-interp.png"
run interp-z "this flower has six pointed yellow petals" --steps 8 --seed 3 -m procedural-flowers -o "$tmp/z" --sheet "$OUT/pf-interp-z.png"
run dataset export procedural-flowers --opt seed=3003 --count 2 -o "$tmp/real"
k=0
for photo in "$tmp"/real/*.png; do
    k=$((k + 1))
    run style "$photo" "a flower with round red petals" "a flower with thin blue petals" "a flower with pointed white petals" \
        -m procedural-flowers -o "$tmp/s" --sheet "$OUT/pf-style-$k.png"
done

if [ -d "$OXFORD" ]; then
    n=0
    for caption in "a pink flower with a white center" "this flower has petals that are yellow" \
        "a red flower with a yellow center" "a white flower with a yellow center"; do
        n=$((n + 1))
        run generate "$caption" -m oxford102 -n 4 --seed 1 -o "$tmp/ox" --sheet "$OUT/ox-caption-$n.png"
    done
    run interp "a yellow flower" "a purple flower" --steps 8 --seed 2 -m oxford102 -o "$tmp/oi" --sheet "$OUT/ox-interp.png"
    run style "$OXFORD/jpg144/image_00001.jpg" "a yellow flower" "a white flower" "a red flower" \
        -m oxford102 -o "$tmp/os" --sheet "$OUT/ox-style.png"
fi
ls "$OUT"
