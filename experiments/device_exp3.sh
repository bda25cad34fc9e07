#!/usr/bin/env bash
# On a lent GPU machine, in one call of the device tool: experiment 3 with the fast protocol on
# full MNIST, PPO (the autoregressive LSTM policy) on NASCell-large-v0 (5 blocks, r_val), 20
# iterations of 20 cells, each iteration's cells trained by a pool of WORKERS processes sharing
# the GPU; every finished cell goes into an evaluation cache that comes back in $OUT.
#
#   here:   bash experiments/device_kit.sh mnist
#           # to continue a search a call did not finish: put its cache in the kit first
#           cp FILES_AT/large_mnist_fast_gpu.sqlite .device/
#   device: run(command="bash experiments/device_exp3.sh", carry=[".device"], timeout_s=580)
#
# The search is deterministic for its seed, so a run stopped at TIME_LIMIT seconds (default 480)
# continues in the next call from the carried cache, replaying what was trained. It saves no
# checkpoints of unfinished children (--no-checkpoints): they could not come back (hundreds of MB
# each), and a GPU child is short. Back in $OUT:
# the cache, the run's iterations.csv, summary.json and rewards.png, and the log. Set WORKERS
# (default 8), TIME_LIMIT, ITERATIONS (20), ARCHS_PER_ITER (20), PROTOCOL (fast), SEED (0), PYTHON.
set -uo pipefail

limit=${TIME_LIMIT:-480}
cache=large_mnist_${PROTOCOL:-fast}_gpu.sqlite

source "$(dirname "$0")/device_env.sh"  # out, py, the wheels, PYTHONPATH, NAS_ENV_DATA
work=$(mktemp -d)
if [ -f ".device/$cache" ]; then cp ".device/$cache" "$work/"; fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true

timeout "$limit" "$py" experiments/train_ppo.py --env-id NASCell-large-v0 \
    --protocol "${PROTOCOL:-fast}" --iterations "${ITERATIONS:-20}" \
    --archs-per-iter "${ARCHS_PER_ITER:-20}" --seeds "${SEED:-0}" \
    --backend process --workers "${WORKERS:-8}" --cache-path "$work/$cache" --no-checkpoints \
    --exp-name exp3_gpu --out-dir "$work/runs" --no-progress > "$out/exp3_gpu.log" 2>&1
echo "train_ppo.py exit status: $? (124: stopped at TIME_LIMIT; the cache keeps what finished)"

"$py" - "$work/$cache" <<'PY'
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # one self-contained file to bring back
print(conn.execute("SELECT COUNT(*) FROM results").fetchone()[0], "cells in the cache")
PY
cp "$work/$cache" "$out/"
run=$(ls -d "$work"/runs/*/ 2>/dev/null | tail -n 1)
for f in iterations.csv summary.json rewards.png; do
    if [ -n "$run" ] && [ -f "$run$f" ]; then cp "$run$f" "$out/"; fi
done
tail -n 5 "$out/exp3_gpu.log"
