#!/usr/bin/env bash
# Fuzzes every parser of outside input (fuzz/fuzz_targets/) with cargo-fuzz on
# the nightly toolchain, SECONDS in all (default 600) shared evenly by the
# targets, and prints one line per target: executions, and crashes found.
#
#   scripts/fuzz.sh [SECONDS] [TARGET ...]
#
# Seeds come from fuzz/seeds/<target> (committed, small); what the fuzzer adds
# goes to target/fuzz-corpus/<target> (not committed). A crash is written to
# fuzz/artifacts/<target>/: turn it into a regression test (tests/fuzz_regressions.rs)
# before fixing it. Needs `cargo install cargo-fuzz` and `./dev.sh setup` once.
set -uo pipefail
cd "$(dirname "$0")/.."

total=${1:-600}
shift || true
all=(line caption session png replay model_card config dataset manifest)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz (and a nightly toolchain)" >&2
    exit 2
fi
export VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1
torch_lib=$(.venv/bin/python -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))') || {
    echo "no .venv with torch: run ./dev.sh setup first" >&2
    exit 2
}
export LD_LIBRARY_PATH="$torch_lib:${LD_LIBRARY_PATH:-}"

# No sanitizer: the code is safe Rust over libtorch (which is not instrumented);
# what is hunted is panics, aborts, hangs and runaway memory.
cargo +nightly fuzz build -s none -O || exit 1

per=$(( total / ${#targets[@]} ))
[ "$per" -lt 1 ] && per=1
logs=target/fuzz-logs
mkdir -p "$logs"
status=0
printf '%-12s %12s %10s  %s\n' target executions exec/s result
for t in "${targets[@]}"; do
    corpus=$PWD/target/fuzz-corpus/$t
    mkdir -p "$corpus" "fuzz/seeds/$t"
    cargo +nightly fuzz run -s none -O "$t" "$corpus" "$PWD/fuzz/seeds/$t" -- \
        -max_total_time="$per" -timeout=20 -rss_limit_mb=4096 -max_len=4096 \
        -print_final_stats=1 >"$logs/$t.log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logs/$t.log" | tail -1)
    if [ $rc -eq 0 ]; then
        result="no crash"
    else
        result="CRASH (rc $rc): see $logs/$t.log and fuzz/artifacts/$t/"
        status=1
    fi
    printf '%-12s %12s %10s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$result"
done
exit $status
