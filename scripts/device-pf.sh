#!/usr/bin/env bash
# Procedural-flowers GAN candidates trained side by side on the lent GPU, each
# then given its style encoder, measured with `gantry eval` and exported f16
# under $OUT (see README, "Training"). Run on the GPU machine with the binary
# and its plugins carried as .device/gantry.txz (scripts/device-pack.sh); the
# text encoder to train on is a folder of the tree (TE):
#
#   TE=state/procedural-text-encoder GAN_MIN=5 STYLE_MIN=1 scripts/device-pf.sh
#
# The candidates (name: extra `train gan` arguments) are in CANDIDATES, one per
# line. Each stage is time-boxed, and the GAN models are under $OUT as soon as
# they are trained, so a run cut short still brings them back.
set -uo pipefail
# The whole script is read before it runs (the braces), so that editing it
# while a long run is under way cannot change what that run does next.
{
cd "$(dirname "$0")/.."
# shellcheck source=device-env.sh
. scripts/device-env.sh
TE=${TE:-state/procedural-text-encoder}
DEV=${DEV:-cuda}
OUT=${OUT:-/tmp/out}
RUNS=${RUNS:-/tmp/runs}
GAN_MIN=${GAN_MIN:-5}
STYLE_MIN=${STYLE_MIN:-1}
EVAL_COUNT=${EVAL_COUNT:-1000}
EVAL_S=${EVAL_S:-120}
BENCH_STEPS=${BENCH_STEPS:-30}
# BENCH_COMPILE=1 also times torch.compile (compiling takes a minute or more
# of the window: only when that comparison is the point).
BENCH_COMPILE=${BENCH_COMPILE:-0}
LIMIT=${LIMIT:-}
# Dataset options for every training command: the caption grammar must be
# the one the text encoder learned (`--opt grammar=classic` for the shipped one).
DATA_OPTS=${DATA_OPTS:-}
CANDIDATES=${CANDIDATES:-"wrong-image: --wrong image
wrong-image-init: --wrong image --init-from weights/procedural-flowers
wrong-class: --wrong class"}
mkdir -p "$RUNS" "$OUT"
# A text encoder sent without its G, D and S files (to keep the upload under
# its limit) was saved over the shipped model's where its card lists those
# files (a text-side folder such as state/procedural-text-encoder lists none).
for f in generator discriminator style_encoder; do
    listed=$($PY -c "import json, sys; print('$f' in json.load(open(sys.argv[1])).get('files', {}))" "$TE/model.json")
    if [ "$listed" = True ] && [ ! -f "$TE/$f.safetensors" ]; then
        cp "weights/procedural-flowers/$f.safetensors" "$TE/"
    fi
done
start=$(date +%s)
say() { echo "[$(($(date +%s) - start)) s] $*"; }
limit=()
[ -n "$LIMIT" ] && limit=(--limit "$LIMIT")
names=()
while IFS=: read -r name _; do names+=("$name"); done <<< "$CANDIDATES"

# Where the weights travel back: G, D and S with the card (the text and image
# encoders are the ones sent), in pieces under the size limit of one file.
bring_back() { # model-dir name
    rm -f "$OUT/$2.tgz."*
    tar czf - -C "$1" model.json generator.safetensors discriminator.safetensors style_encoder.safetensors |
        split -b 15M - "$OUT/$2.tgz."
}
# A candidate's latest model: with its trained style encoder once there is one.
latest() { # name
    if [ -f "$RUNS/$1-style/model/model.json" ]; then echo "$RUNS/$1-style/model"; else echo "$RUNS/$1/model"; fi
}
# Its latest model exported f16 and put under $OUT.
ship() { # name
    [ -f "$(latest "$1")/model.json" ] || return 0
    rm -rf "/tmp/ship/$1"
    $G model export "$(latest "$1")" "/tmp/ship/$1" --half > /dev/null && bring_back "/tmp/ship/$1" "$1"
}

if [ "$BENCH_STEPS" -gt 0 ]; then
    {
        nvidia-smi -L 2>/dev/null || true
        echo "## bench train: one GAN-INT-CLS step, batch 64 (images/s)"
        echo "gantry $DEV reed: $($G --device "$DEV" bench train --preset reed --batch 64 --steps "$BENCH_STEPS" 2>&1 | tail -n 1)"
        echo "## where gantry's step goes ($DEV, reed)"
        $G --device "$DEV" bench train --preset reed --batch 64 --steps 10 --phases 2>&1 | grep '^#  ' || true
        echo "pytorch $DEV reed: $($PY bench/pytorch_gan_int_cls.py --device "$DEV" --batch 64 --steps "$BENCH_STEPS" 2>&1 | tail -n 1)"
        echo "gantry $DEV small: $($G --device "$DEV" bench train --preset small --batch 64 --steps "$BENCH_STEPS" 2>&1 | tail -n 1)"
        [ "${BENCH_COMPILE:-0}" = 1 ] && echo "pytorch $DEV reed torch.compile: $($PY bench/pytorch_gan_int_cls.py --device "$DEV" --batch 64 --steps "$BENCH_STEPS" --warmup 5 --compile 2>&1 | tail -n 1)"
        echo "## bench generate: caption to pixels, procedural-flowers (ms per batch)"
        for b in 1 64; do
            echo "gantry $DEV batch $b: $($G --device "$DEV" -m weights/procedural-flowers bench generate --batch "$b" --check 2>&1 | tail -n 2 | tr '\n' ' ')"
            echo "pytorch $DEV batch $b: $($PY bench/pytorch_generate.py weights/procedural-flowers --device "$DEV" --batch "$b" 2>&1 | tail -n 1)"
        done
    } > "$RUNS/bench.txt"
    cat "$RUNS/bench.txt"
fi

say "GANs ($GAN_MIN min each, side by side): ${names[*]}"
while IFS=: read -r name args; do
    # shellcheck disable=SC2086 # the candidate's arguments are words
    # shellcheck disable=SC2086 # DATA_OPTS holds words
    $G --device "$DEV" train gan --dataset procedural-flowers $DATA_OPTS "${limit[@]}" --text-encoder "$TE" \
        --preset small --run "$RUNS/$name" --time-limit "$GAN_MIN" --checkpoint-every 500 $args \
        > "$RUNS/$name.log" 2>&1 &
done <<< "$CANDIDATES"
wait
for name in "${names[@]}"; do
    tail -n 2 "$RUNS/$name.log"
    ship "$name"
done

say "style encoders ($STYLE_MIN min each)"
for name in "${names[@]}"; do
    # shellcheck disable=SC2086 # DATA_OPTS holds words
    $G --device "$DEV" train style-encoder --dataset procedural-flowers $DATA_OPTS "${limit[@]}" --model "$RUNS/$name/model" \
        --run "$RUNS/$name-style" --steps 1000000 --time-limit "$STYLE_MIN" > "$RUNS/$name-style.log" 2>&1 &
done
wait

for name in "${names[@]}"; do ship "$name"; done
# The logs, losses, cards and the last two sample grids of each run.
pack_logs() {
    for d in "$RUNS"/*/samples; do ls "$d"/*.png 2>/dev/null | head -n -2 | xargs -r rm; done
    tar czf "$OUT/logs.tgz" -C "$RUNS" --exclude='*.safetensors' .
}
pack_logs

say "eval ($EVAL_COUNT renders each, at most $EVAL_S s)"
for name in "${names[@]}"; do
    timeout "$EVAL_S" $G --device "$DEV" eval "$(latest "$name")" --probe weights/probe --count "$EVAL_COUNT" --queries 100 \
        --dry-run > "$RUNS/$name.eval.txt" 2>&1 &
done
wait
for name in "${names[@]}"; do
    echo "== $name"
    grep -E "content_|style_kept|diversity|embedding_reads" "$RUNS/$name.eval.txt"
done
pack_logs
ls -la "$OUT"
say "done"
exit
}
