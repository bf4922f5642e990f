# Sourced by the scripts that run on a lent GPU machine (continue.sh with
# DEVICE set, device-pf.sh, device-sweep.sh): the machine's own libtorch ahead
# of whatever the path holds, gantry's data and config in /tmp, and G, the
# binary: $GANTRY where set, else the one scripts/device-pack.sh carried as
# .device/gantry.txz (unpacked with its plugins into /tmp/gantry-bin).
export GANTRY_DATA_DIR=/tmp/gd GANTRY_CONFIG_DIR=/tmp/gc GANTRY_THREADS=${GANTRY_THREADS:-4}
PY=${PY:-/opt/torch/.venv/bin/python}
if [ -x "$PY" ]; then
    LD_LIBRARY_PATH=$($PY -c 'import torch, os; print(os.path.dirname(torch.__file__) + "/lib")'):${LD_LIBRARY_PATH:-}
    export LD_LIBRARY_PATH
fi
if [ -z "${GANTRY:-}" ] && [ -f .device/gantry.txz ] && [ ! -x .device/gantry ]; then
    mkdir -p /tmp/gantry-bin && tar xJf .device/gantry.txz -C /tmp/gantry-bin && GANTRY=/tmp/gantry-bin/gantry
fi
G=${GANTRY:-$PWD/.device/gantry}
