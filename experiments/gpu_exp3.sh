#!/usr/bin/env bash
# Experiment 3 on a GPU machine, with the fast protocol on full MNIST: PPO (the autoregressive LSTM
# policy) on NASCell-large-v0 (5 blocks, r_val), 20 iterations of 20 cells, each iteration's cells
# trained by a pool of WORKERS processes sharing the GPU. Run it from the repository root of the
# GPU machine:
#
#     bash experiments/gpu_exp3.sh
#
# Every finished cell goes into the evaluation cache $OUT/large_mnist_fast_gpu.sqlite (default
# OUT: gpu_results/). The search is deterministic for its seed, so a run stopped by Ctrl-C or at
# TIME_LIMIT seconds (default 0, no limit) continues when the same command is run again: it
# replays what the cache holds and trains on from there. Unfinished children save no checkpoints
# (--no-checkpoints): a child trains in minutes on a GPU, so a stopped one is trained again. In
# $OUT: the cache, the run's iterations.csv, summary.json and rewards.png, and the log
# exp3_gpu.log. Set WORKERS (default 8), TIME_LIMIT, ITERATIONS (20), ARCHS_PER_ITER (20),
# PROTOCOL (fast), SEED (0) and PYTHON; a machine without network access gets the dataset and the
# packages from gpu_offline_kit.sh (with mnist).
set -uo pipefail

limit=${TIME_LIMIT:-0}
cache=large_mnist_${PROTOCOL:-fast}_gpu.sqlite

source "$(dirname "$0")/gpu_setup.sh"  # out, py, PYTHONPATH, NAS_ENV_DATA (and the kit's wheels)
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true

timeout --foreground "$limit" "$py" experiments/train_ppo.py --env-id NASCell-large-v0 \
    --protocol "${PROTOCOL:-fast}" --iterations "${ITERATIONS:-20}" \
    --archs-per-iter "${ARCHS_PER_ITER:-20}" --seeds "${SEED:-0}" \
    --backend process --workers "${WORKERS:-8}" --cache-path "$out/$cache" --no-checkpoints \
    --exp-name exp3_gpu --out-dir "$out/runs" --no-progress > "$out/exp3_gpu.log" 2>&1
echo "train_ppo.py exit status: $? (124: stopped at TIME_LIMIT; the cache keeps what finished)"

echo "$out/$cache:"  # folded into one self-contained file, to copy elsewhere, and checked
"$py" experiments/check_cache.py "$out/$cache"
run=$(ls -d "$out"/runs/*/ 2>/dev/null | tail -n 1)
for f in iterations.csv summary.json rewards.png; do
    if [ -n "$run" ] && [ -f "$run$f" ]; then cp "$run$f" "$out/"; fi
done
tail -n 5 "$out/exp3_gpu.log"
