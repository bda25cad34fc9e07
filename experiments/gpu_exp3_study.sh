#!/usr/bin/env bash
# Experiment 3's second round, its last step on a GPU machine: the best cell of each search,
# retrained under RETRAIN (default fast) with seeds 0 and 1 on the GPU. Run it from the repository
# root of the GPU machine:
#
#     bash experiments/gpu_exp3_study.sh
#
# The cells come from a study's best_cells.csv (CELLS; default the shipped
# docs/data/exp3_study/DATASET_PROTOCOL_best_cells.csv, written by exp3_study.py from the
# searches finished on CPUs), so no search is replayed here: a search's cells are CPU rows of the
# evaluation cache, which serves a result only to the device type it was trained on. The runs go
# into $OUT/large_DATASET_RETRAIN.sqlite (default OUT: gpu_results/), which starts as a copy of
# the shipped reward_tables/evaluations/large_DATASET_RETRAIN.sqlite where there is one; every
# finished run is stored at once, Ctrl-C (or TIME_LIMIT seconds; default 0, no limit) saves the
# runs in training to CHECKPOINTS (default $OUT/checkpoints; each holds the run's weights and
# optimizer state), and the same command resumes. Before them, the best A_small cell of the
# shipped small_DATASET_RETRAIN.csv (trained on a CPU) is trained the same way on this GPU into
# CONTROL/small_DATASET_RETRAIN.csv (default CONTROL: $OUT/control), the like-for-like reference.
# To report them in another checkout, copy the cache over the shipped one and run the study's
# report there:
#
#     cp gpu_results/large_fashion_mnist_fast.sqlite reward_tables/evaluations/
#     python experiments/exp3_study.py --dataset fashion_mnist --protocol cheap \
#         --ppo-settings scaled --retrain fast --retrain-device cuda --report-only \
#         --retrain-control gpu_results/control
#
# Set DATASET (fashion_mnist), PROTOCOL (the searches' reward, cheap), RETRAIN (fast), CELLS,
# CONTROL, WORKERS (runs trained at once, default 8), THREADS (CPU threads per run, default 2),
# DEVICE (cuda), TIME_LIMIT and PYTHON; a machine without network access gets the dataset and
# the packages from gpu_offline_kit.sh.
set -uo pipefail

dataset=${DATASET:-fashion_mnist}
protocol=${PROTOCOL:-cheap}
retrain=${RETRAIN:-fast}
limit=${TIME_LIMIT:-0}
cells=${CELLS:-docs/data/exp3_study/${dataset}_${protocol}_best_cells.csv}

source "$(dirname "$0")/gpu_setup.sh"  # out, py, PYTHONPATH, NAS_ENV_DATA (and the kit's wheels)
checkpoints=${CHECKPOINTS:-$out/checkpoints}
cache=$out/large_${dataset}_${retrain}.sqlite
shipped=reward_tables/evaluations/large_${dataset}_${retrain}.sqlite
if [ ! -f "$cache" ] && [ -f "$shipped" ]; then
    cp "$shipped" "$cache.part" && mv "$cache.part" "$cache" || exit 1
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true
start=$(date +%s)

timeout --foreground "$limit" "$py" experiments/exp3_study.py --dataset "$dataset" \
    --protocol "$protocol" --retrain "$retrain" --retrain-cells "$cells" \
    --retrain-device "${DEVICE:-cuda}" --retrain-cache "$cache" --workers "${WORKERS:-8}" \
    --threads "${THREADS:-2}" --checkpoint-dir "$checkpoints" --out-dir "$out/exp3_study" \
    --retrain-control "${CONTROL:-$out/control}" > "$out/exp3_study.log" 2>&1
echo "exp3_study.py exit status: $? after $(( $(date +%s) - start )) s (124: stopped at TIME_LIMIT; the cache keeps what finished)"

echo "$cache:"  # folded into one self-contained file, to copy elsewhere, and checked
"$py" experiments/check_cache.py "$cache"
grep -h "best cell, seed" "$out/exp3_study.log" | tail -n 40
