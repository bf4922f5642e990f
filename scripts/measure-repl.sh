#!/usr/bin/env bash
# Measures the REPL as a person meets it, in a real terminal (tmux):
# launch to a ready prompt, and Enter to the pictures drawn, on the CPU.
#   scripts/measure-repl.sh [model] [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
G=$PWD/target/release/gantry
MODEL=${1:-procedural-flowers}
RUNS=${2:-5}
data=$(mktemp -d)
trap 'rm -rf "$data"; tmux kill-session -t gantry-measure 2>/dev/null || true' EXIT
now() { date +%s.%N; }
wait_for() { until tmux capture-pane -p -t gantry-measure 2>/dev/null | grep -q -- "$1"; do sleep 0.005; done; }
for run in $(seq "$RUNS"); do
    start=$(now)
    tmux new-session -d -s gantry-measure -x 120 -y 40 \
        "GANTRY_DATA_DIR=$data GANTRY_CONFIG_DIR=$data GANTRY_DEVICE=cpu $G -m $MODEL; sleep 5"
    wait_for "sampler gaussian"
    ready=$(now)
    tmux send-keys -t gantry-measure -l "a red flower with five round petals"
    sleep 0.3
    enter=$(now)
    tmux send-keys -t gantry-measure Enter
    wait_for "#$run.4\|#1.4"
    drawn=$(now)
    echo "run $run: launch to prompt $(echo "($ready - $start) * 1000" | bc -l | cut -d. -f1) ms, Enter to 4 pictures $(echo "($drawn - $enter) * 1000" | bc -l | cut -d. -f1) ms"
    tmux kill-session -t gantry-measure
done
