#!/usr/bin/env bash
# Continues the shipped models' runs, trained from scratch on one schedule
# (paper.md §4: 600 epochs, lr halved every 100; `small` preset; what the
# learning curve chose: raw φ(t) + --match-loss 4 + fresh noise, G's bilinear
# doublings, D's joint layer normalised over each pair, G's mode-seeking term,
# and on procedural flowers D's wrong images half siblings), for MIN minutes,
# on the CPU or on a lent GPU; then gives each model a style encoder and
# evaluates it:
#
#   WHICH="pf ox" MIN=120 STYLE_MIN=5 scripts/continue.sh          # this CPU
#   UPSAMPLING=transposed D_JOINT_NORM=batch MODE_SEEKING=0 WRONG=image ...   # the paper's layers, as before
#   UPSAMPLING=resize WHICH=pf ... scripts/continue.sh   # from scratch with resize-convolutions
#   UPSAMPLING=bilinear MINIBATCH_STD=1 ... scripts/continue.sh   # and D reading the batch's spread
#   MATCH_NEGATIVES=image ... scripts/continue.sh   # G's matching term against every other picture's text
#   WRONG=sibling WHICH=pf ... scripts/continue.sh   # D's wrong images half siblings (one attribute changed)
#   D_BATCHES=joint ... scripts/continue.sh   # D's real, wrong and fake pairs in one batch (--d-batches)
#   D_JOINT_NORM=batch ... scripts/continue.sh   # D's joint layer as the paper's batch norm (--d-joint-norm)
#   MODE_SEEKING=2 ... scripts/continue.sh   # G's mode-seeking term at weight 2 (--mode-seeking; 0: none)
#   CAPTIONS_AVERAGED=1 TEXT_NOISE=1 ... scripts/continue.sh   # single captions, noise on G's text
#   REWORDED=0.5 WHICH=pf ... scripts/continue.sh   # half of G's texts read from its captions reworded (--reworded)
#   PHRASING_CONSISTENCY=10 WHICH=pf ... scripts/continue.sh   # G asked for one picture of a caption as written and reworded
#   G_EMA=0.999 ... scripts/continue.sh   # the models draw with G's moving average (--g-ema; training unchanged)
#   SEED=1 RUNS=runs-seed1 ... scripts/continue.sh   # a second draw of the same run beside the first
#   DEVICE=cuda WHICH=pf MIN=8 STYLE_MIN=1 G_EMA=0.999 OUT=$OUT scripts/continue.sh   # a GPU window (G's average: README, Learning curve)
#   DISTIL_STEPS=0 ... scripts/continue.sh   # ship procedural flowers' text encoder as the GAN had it (not distilled)
#
# A run goes on from its run folder's checkpoint where there is one (the same
# session, continued: exact), else from the shipped model where this run
# trained it (its card records the matching term; --init-from takes up the
# schedule there, Adam's moments start afresh), else from scratch. The
# shipped model is the state kept between sessions: the tree that travels to a
# GPU has room for no more (64 MiB with the binary).
# With OUT set, the evaluations and the models (f16) are put there in pieces of
# 15 MB (`cat NAME.* > NAME` joins them).
# Afterwards: compare `$RUNS/NAME.eval.txt` with the shipped model's card and
# ship a model only where it measures better (README, "Shipped models").
set -uo pipefail
# The whole script is read before it runs (the braces), so that editing it
# while a long run is under way cannot change what that run does next.
{
cd "$(dirname "$0")/.."

DEVICE=${DEVICE:-cpu}
G=${GANTRY:-target/release/gantry}
if [ "$DEVICE" != cpu ]; then
    # On a lent GPU: the binary and its plugins carried as .device/gantry.txz
    # (scripts/device-pack.sh: the tree with them must stay under 64 MiB), the
    # machine's own libtorch, and no Oxford-102 (too large to travel: WHICH=pf).
    # shellcheck source=device-env.sh
    . scripts/device-env.sh
fi
RUNS=${RUNS:-runs}
WHICH=${WHICH:-pf ox}
MIN=${MIN:-60}
STYLE_MIN=${STYLE_MIN:-5}
EVAL_COUNT=${EVAL_COUNT:-2000}
DISTIL_STEPS=${DISTIL_STEPS:-6000}
OUT=${OUT:-}
LIMIT=${LIMIT:-}         # use at most this many images (smoke runs)
UPSAMPLING=${UPSAMPLING:-bilinear}   # G's doublings for a run that starts from scratch (--upsampling)
MINIBATCH_STD=${MINIBATCH_STD:-}       # 1: its D reads the batch's spread (--minibatch-std)
MATCH_NEGATIVES=${MATCH_NEGATIVES:-class} # the matching term's negatives (--match-negatives)
D_BATCHES=${D_BATCHES:-separate} # D's batches of pairs (--d-batches)
D_JOINT_NORM=${D_JOINT_NORM:-pair} # how D normalises its joint layer (--d-joint-norm)
MODE_SEEKING=${MODE_SEEKING:-1}  # weight of G's mode-seeking term (--mode-seeking; 0: none)
CAPTIONS_AVERAGED=${CAPTIONS_AVERAGED:-4} # caption embeddings averaged per image (--captions-averaged)
TEXT_NOISE=${TEXT_NOISE:-0}      # spread of the noise on G's text (--text-noise; 0: none)
TEXT_NOISE_ALONG=${TEXT_NOISE_ALONG:-dimensions} # its directions (--text-noise-along dimensions|phrasings)
REWORDED=${REWORDED:-0}          # share of G's texts read reworded (--reworded; 0: none)
PHRASING_CONSISTENCY=${PHRASING_CONSISTENCY:-0} # weight of G's phrasing-consistency term (--phrasing-consistency; 0: none)
# Decay of G's moving average (--g-ema; unset: none). Not one of the options a
# run must keep: training is the same with it, a run may take it up on
# --resume, and one that goes on from a shipped model that holds an average
# goes on from that average (about 1 / (1 - decay) steps behind its G).
G_EMA=${G_EMA:-}
WRONG=${WRONG:-}         # D's wrong images (--wrong) for a run from scratch; unset: pf sibling, ox class (the paper)
SEED=${SEED:-}           # the runs' --seed (initialisation, batches, noise; 0 when unset; give it again to resume)
# The arguments a run from scratch is started with that a run must keep:
# G's and D's layers, the matching term's negatives (and, per run below,
# D's wrong images).
options_asked="--upsampling $UPSAMPLING${MINIBATCH_STD:+ --minibatch-std}"
[ "$MATCH_NEGATIVES" = class ] || options_asked="$options_asked --match-negatives $MATCH_NEGATIVES"
[ "$D_BATCHES" = separate ] || options_asked="$options_asked --d-batches $D_BATCHES"
[ "$D_JOINT_NORM" = batch ] || options_asked="$options_asked --d-joint-norm $D_JOINT_NORM"
# A weight as %g writes it, so that 1, 1.0 and the card's 1.0 read alike.
MODE_SEEKING=$(printf '%g' "$MODE_SEEKING")
[ "$MODE_SEEKING" = 0 ] || options_asked="$options_asked --mode-seeking $MODE_SEEKING"
[ "$CAPTIONS_AVERAGED" = 4 ] || options_asked="$options_asked --captions-averaged $CAPTIONS_AVERAGED"
TEXT_NOISE=$(printf '%g' "$TEXT_NOISE")
[ "$TEXT_NOISE" = 0 ] || options_asked="$options_asked --text-noise $TEXT_NOISE"
[ "$TEXT_NOISE" = 0 ] || [ "$TEXT_NOISE_ALONG" = dimensions ] || options_asked="$options_asked --text-noise-along $TEXT_NOISE_ALONG"
REWORDED=$(printf '%g' "$REWORDED")
[ "$REWORDED" = 0 ] || options_asked="$options_asked --reworded $REWORDED"
PHRASING_CONSISTENCY=$(printf '%g' "$PHRASING_CONSISTENCY")
[ "$PHRASING_CONSISTENCY" = 0 ] || options_asked="$options_asked --phrasing-consistency $PHRASING_CONSISTENCY"
# One libtorch thread per run on the CPU (the runs go side by side).
[ "$DEVICE" = cpu ] && export GANTRY_THREADS=${GANTRY_THREADS:-1} OMP_NUM_THREADS=1

# Each run: the model it goes on from, and the `train gan` arguments it was
# started with (a checkpoint resumes only under the same settings, dataset
# path included: where Oxford-102 lies elsewhere, link it to this path).
declare -A from args data
from[pf]=${FROM_PF:-weights/procedural-flowers}
data[pf]="--dataset procedural-flowers --opt grammar=rich"
args[pf]="--text-encoder state/procedural-text-encoder --preset small --fresh-noise --match-loss 4"
from[ox]=${FROM_OX:-weights/oxford102}
data[ox]="--dataset reed:../shared/datasets/oxford102"
args[ox]="--text-encoder weights/oxford102 --preset small --fresh-noise --match-loss 4"
declare -A folder=([pf]=procedural-flowers [ox]=oxford102)
# D's wrong images where WRONG is not given; and for runs from before they
# were kept, what those runs had.
declare -A wrong=([pf]=sibling [ox]=class) wrong_before=([pf]=image [ox]=class)
limit=()
[ -n "$LIMIT" ] && limit=(--limit "$LIMIT")

start=$(date +%s)
say() { echo "[$(($(date +%s) - start)) s] $*"; }
gantry() { "$G" --device "$DEVICE" "$@"; }
bring_back() { # file-or-dir name
    [ -n "$OUT" ] || return 0
    mkdir -p "$OUT"
    rm -f "$OUT/$2."*
    if [ -d "$1" ]; then tar czf - -C "$1" .; else cat "$1"; fi | split -b 15M - "$OUT/$2."
}

# An option the shipped model's card records: the first or last value of
# "KEY" in $card, as " FLAG VALUE", or nothing where it is DEFAULT or absent.
from_card() { # KEY first|last DEFAULT FLAG
    local v
    v=$(sed -n "s/.*\"$1\": \"\([a-z-]*\)\".*/\1/p" "$card" | if [ "$2" = first ]; then head -1; else tail -1; fi)
    [ "${v:-$3}" = "$3" ] || printf ' %s %s' "$4" "$v"
}
# A number the card records: its last value of "KEY", as " FLAG VALUE"
# (as %g writes it), or nothing where it is absent.
number_from_card() { # KEY FLAG
    local v
    v=$(sed -n "s/.*\"$1\": \([0-9.e+-]*\).*/\1/p" "$card" | tail -1)
    [ -z "$v" ] || printf ' %s %g' "$2" "$v"
}

for w in $WHICH; do
    [ -n "${from[$w]:-}" ] || { echo "unknown run '$w' (pf or ox)" >&2; exit 2; }
done

say "GANs ($MIN min each, side by side): $WHICH on $DEVICE"
for w in $WHICH; do
    run=$RUNS/${folder[$w]}
    mkdir -p "$run"
    # G's and D's layers, the matching negatives and the wrong images: the run folder's (kept
    # beside it), else the shipped model's where the run goes on from it,
    # else the ones asked for.
    asked="$options_asked --wrong ${WRONG:-${wrong[$w]}}"
    resume=() options=$asked
    card="${from[$w]}/model.json"
    if [ -f "$run/checkpoint.safetensors" ]; then
        resume=(--resume)
        if [ -f "$run.options" ]; then
            options=$(cat "$run.options")
        elif [ -f "$run.layers" ]; then # a run folder from before the negatives were kept
            options=$(cat "$run.layers")
        else # a run folder from before D's layers were recorded
            options="--upsampling $(cat "$run.upsampling" 2>/dev/null || echo transposed)"
        fi
        # A run from before its wrong images were kept had the default of then.
        [[ "$options" == *--wrong* ]] || options="$options --wrong ${wrong_before[$w]}"
    elif grep -q '"match_loss": 4' "$card" 2>/dev/null; then
        resume=(--init-from "${from[$w]}")
        layer=$(sed -n 's/.*"upsampling": "\([a-z-]*\)".*/\1/p' "$card" | head -1)
        options="--upsampling ${layer:-transposed}"
        grep -q '"minibatch_std": true' "$card" && options="$options --minibatch-std"
        options="$options$(from_card match_negatives first class --match-negatives)"
        options="$options$(from_card d_batches last separate --d-batches)"
        options="$options$(from_card joint_norm first batch --d-joint-norm)"
        options="$options$(number_from_card mode_seeking --mode-seeking)"
        averaged=$(sed -n 's/.*"captions_averaged": \([0-9]*\).*/\1/p' "$card" | tail -1)
        [ "${averaged:-4}" = 4 ] || options="$options --captions-averaged $averaged"
        options="$options$(number_from_card text_noise --text-noise)"
        options="$options$(from_card text_noise_along last dimensions --text-noise-along)"
        options="$options$(number_from_card reworded --reworded)"
        options="$options$(number_from_card phrasing_consistency --phrasing-consistency)"
        trained_wrong=$(sed -n 's/.*"wrong_images": "\([a-z]*\)".*/\1/p' "$card" | tail -1)
        options="$options --wrong ${trained_wrong:-${wrong_before[$w]}}"
        if [ "$options" != "$asked" ]; then
            echo "${folder[$w]}: the shipped model was trained with '$options', '$asked' asked for: starting from scratch" >&2
            resume=() options=$asked
        fi
    fi
    echo "$options" > "$run.options"
    say "${folder[$w]}: ${resume[*]:-from scratch} ($options)"
    # shellcheck disable=SC2086 # the arguments are words
    gantry train gan ${data[$w]} "${limit[@]}" ${args[$w]} $options ${SEED:+--seed "$SEED"} ${G_EMA:+--g-ema "$G_EMA"} --run "$run" "${resume[@]}" \
        --time-limit "$MIN" --checkpoint-every 500 > "$run.log" 2>&1 &
done
wait

for w in $WHICH; do tail -n 3 "$RUNS/${folder[$w]}.log"; done

say "style encoders ($STYLE_MIN min each)"
for w in $WHICH; do
    run=$RUNS/${folder[$w]}
    [ -f "$run/model/model.json" ] || continue
    rm -rf "$run-style"
    # shellcheck disable=SC2086 # the arguments are words
    gantry train style-encoder ${data[$w]} "${limit[@]}" --model "$run/model" --run "$run-style" \
        --steps 1000000 --time-limit "$STYLE_MIN" > "$run-style.log" 2>&1 &
done
wait

# What each run ships: its model with the style encoder, and for procedural
# flowers that model's text encoder taught unseen phrasings as the shipped one
# was in session 23 (G, D and S unchanged; DISTIL_STEPS=0 leaves it out).
declare -A final
for w in $WHICH; do final[$w]=$RUNS/${folder[$w]}-style/model; done
run=$RUNS/procedural-flowers
if [ "$DISTIL_STEPS" -gt 0 ] && [ -n "${final[pf]:-}" ] && [ -f "${final[pf]}/model.json" ]; then
    say "procedural-flowers: text-distil ($DISTIL_STEPS steps)"
    rm -rf "$run-distil"
    gantry train text-distil --model "${final[pf]}" --opt grammar=rich --teacher-opt grammar=rich \
        --own-captions 1 --perturb 0.7 --rephrase 0.3 --steps "$DISTIL_STEPS" --run "$run-distil" > "$run-distil.log" 2>&1 &&
        final[pf]=$run-distil/model
    tail -n 2 "$run-distil.log"
fi

say "eval ($EVAL_COUNT renders or captions each)"
for w in $WHICH; do
    run=$RUNS/${folder[$w]}
    [ -f "${final[$w]}/model.json" ] || continue
    extra=(--count "$EVAL_COUNT")
    [ "$w" = ox ] && extra=(--dataset reed:../shared/datasets/oxford102 --classifier weights/oxford102-classifier)
    gantry eval "${final[$w]}" "${extra[@]}" --dry-run > "$run.eval.txt" 2>&1 &
done
wait
for w in $WHICH; do
    run=$RUNS/${folder[$w]}
    echo "== ${folder[$w]}"
    cat "$run.eval.txt" 2>/dev/null
    bring_back "$run.eval.txt" "${folder[$w]}.eval.txt"
    if [ -n "$OUT" ] && [ -f "${final[$w]}/model.json" ]; then
        rm -rf "/tmp/ship/${folder[$w]}"
        gantry model export "${final[$w]}" "/tmp/ship/${folder[$w]}" --half > /dev/null &&
            bring_back "/tmp/ship/${folder[$w]}" "${folder[$w]}-model.tgz"
    fi
done
say "done"
exit
}
