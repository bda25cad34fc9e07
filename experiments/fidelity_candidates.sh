#!/usr/bin/env bash
# Every candidate reward of docs/fidelity.md, one bench_fidelity.py run each: its rank figures on
# both A_small tables (and the A_large reference set where one is given as $LARGE_REFERENCE), its
# seconds per A_large cell on 1 and 2 threads, written as JSON under docs/data/fidelity/ and
# printed as the table's rows.
#
#     bash experiments/fidelity_candidates.sh [scores|training|all]     # default: all
#
# Training candidates store their runs in runs/fidelity/cache.sqlite, so a rerun costs lookups.
# Set PYTHON for the interpreter and LARGE (default 20) for the number of timed A_large cells.
set -euo pipefail

py=${PYTHON:-python}
large=${LARGE:-20}
out=docs/data/fidelity
mkdir -p "$out"
reference=()
if [ -n "${LARGE_REFERENCE:-}" ]; then reference=(--large-reference "$LARGE_REFERENCE"); fi
bench() {  # bench NAME ARGS...: one candidate
    local name=$1; shift
    "$py" experiments/bench_fidelity.py "$@" "${reference[@]}" --out "$out/$name.json" | tail -n 1
}

if [ "${1:-all}" != training ]; then
    for score in synflow naswot jacob_cov snip grad_norm zico params macs; do
        bench "$score" --score "$score" --large "$large" --threads 1,2
    done
    # The vote's members are the best three single scores on MNIST, so its Fashion-MNIST
    # figures are the held-out ones; Abdelfattah et al.'s published vote is chosen on neither.
    bench vote_mnist_top3 --score synflow+naswot+jacob_cov --large "$large" --threads 1,2
    bench vote_abdelfattah --score synflow+jacob_cov+snip --large "$large" --threads 1,2
    for fit in mnist fashion_mnist; do
        bench "model_fit_$fit" --score model:synflow+naswot+jacob_cov+zico+params --fit-on "$fit" \
            --large "$large" --threads 1,2
    done
fi

if [ "${1:-all}" != scores ]; then
    cache=(--cache-path runs/fidelity/cache.sqlite)
    images16k='{"name": "images16k", "epochs": 1, "lr": 0.005, "schedule": "onecycle", "batch_size": 64,
                "checkpoints_per_epoch": 2, "train_images": 16000, "val_images": 6000, "test_images": 2000,
                "filters": [8, 16], "fc_units": 128, "precision": "fp32"}'
    for signal in val tse; do
        bench "cheap_$signal" --protocol cheap --signal "$signal" "${cache[@]}" --large 5 --threads 1,2
        bench "images16k_$signal" --protocol "$images16k" --signal "$signal" "${cache[@]}" \
            --large 5 --threads 1,2
    done
fi
