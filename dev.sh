#!/usr/bin/env bash
# gantry's setup, run and test entry point for a fresh machine (Rust, Python 3
# and pip present). Idempotent: each step is skipped when already done.
#
#   ./dev.sh start [gantry args]   set up, build, and open gantry on the shipped model
#   ./dev.sh test                  set up, build, and run every test (+ fmt, clippy)
#   ./dev.sh setup                 set up and build only
set -euo pipefail
cd "$(dirname "$0")"

TORCH_VERSION=2.11.0   # the libtorch that tch 0.24 is built for

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

setup_venv() {
    if [ ! -x .venv/bin/python ]; then
        say "creating the project virtualenv (.venv)"
        python3 -m venv .venv
    fi
    if ! .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
        say "installing torch==$TORCH_VERSION from PyPI into .venv (about 4.6 GB, once)"
        .venv/bin/pip install --disable-pip-version-check -q "torch==$TORCH_VERSION"
    fi
    # torch-sys finds libtorch through the venv's python.
    export VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1
}

build() {
    say "building the workspace (release)"
    cargo build --release --workspace --locked
}

ensure_model() {
    local gantry=target/release/gantry model
    model=$("$gantry" config | sed -n 's/^model = "\(.*\)".*/\1/p')
    if ! "$gantry" model info "$model" >/dev/null 2>&1; then
        say "no trained '$model' model is installed yet: creating an untrained one so the program runs"
        "$gantry" model init "$model" --preset small --force
    fi
}

cmd=${1:-start}
shift || true
case "$cmd" in
    setup)
        setup_venv
        build
        ;;
    start)
        setup_venv
        build
        ensure_model
        exec target/release/gantry "$@"
        ;;
    test)
        setup_venv
        build
        say "cargo fmt --check"
        cargo fmt --all -- --check
        say "cargo clippy"
        cargo clippy --release --workspace --all-targets --locked -- -D warnings
        say "cargo test"
        cargo test --release --workspace --locked
        ;;
    *)
        echo "usage: ./dev.sh [start [gantry args] | test | setup]" >&2
        exit 2
        ;;
esac
