#!/usr/bin/env bash
# Every candidate reward of docs/fidelity/index.md, one bench_fidelity.py run each: its rank
# figures on both A_small tables (and on the A_large reference set, where $LARGE_REFERENCE names
# its CSV), its seconds per random 5-block A_large cell on 1 and 2 threads, written as JSON under
# docs/data/fidelity/; then the table of all of them (experiments/fidelity_table.py).
#
#     bash experiments/fidelity_candidates.sh [scores|training|reference|all]   # default: all
#     LARGE_REFERENCE=reward_tables/large_fashion_mnist_fast.csv \
#         bash experiments/fidelity_candidates.sh large
#     LARGE_REFERENCE=reward_tables/large_fashion_mnist_fast.csv \
#         bash experiments/fidelity_candidates.sh noise
#
# `noise` trains each training candidate's second seed on both A_small tables (and `cheap`'s
# and `images16k`'s on the A_large set, where $LARGE_REFERENCE names it) and writes, under
# docs/data/fidelity_noise/, how far its two seeds agree and how it would rank with no seed
# noise (bench_fidelity.py --train-seeds 0,1); then their table (fidelity_table.py --noise).
#
#     LARGE_REFERENCE=reward_tables/large_fashion_mnist_fast.csv \
#         bash experiments/fidelity_candidates.sh late
#
# `late` reads runs by their late training loss (the loss16k protocol, bench_fidelity.py
# --signal late): first it times cheap, loss16k and loss12k one after another on the same five
# random 5-block A_large cells (into docs/data/fidelity_late/timing_*.json), then ranks
# images16k's cached runs by their late loss (loss16k trains them step for step as images16k
# does), then trains loss12k's seeds 0 and 1 side by side (one thread each), ranks them on
# both A_small tables and, where $LARGE_REFERENCE names it, the A_large set, and exports its
# A_small runs as reward_tables/small_<dataset>_loss12k.csv.
#
# `large` ranks the training-free candidates, `cheap` and the hybrid on the A_large reference set
# as it stands (any number of its cells), without timing them, into
# docs/data/fidelity_large/<the table's name>/ (a set still being built changes these figures as
# it grows; the timed figures stay in docs/data/fidelity/).
#
# Training candidates store their runs in reward_tables/evaluations/fidelity_small.sqlite, so a rerun costs lookups
# (from scratch: about 64 x 2 cells per protocol, 3 s (cheap) to 60 s (ref16) each on one
# thread). Set PYTHON for the interpreter, LARGE (default 20) for the A_large cells timed per
# training-free candidate and LARGE_TRAIN (default 5) per training candidate. JOBS=2 runs two
# candidates at once, in `large` mode only (it times nothing, so candidates may share the cores):
#
#     JOBS=2 LARGE_REFERENCE=reward_tables/large_fashion_mnist_fast.csv \
#         bash experiments/fidelity_candidates.sh large
set -euo pipefail

py=${PYTHON:-python}
large=${LARGE:-20}
large_train=${LARGE_TRAIN:-5}
out=docs/data/fidelity
mode=${1:-all}
jobs_max=${JOBS:-1}
if ! [[ "$jobs_max" =~ ^[1-9][0-9]*$ ]]; then
    echo "JOBS=$jobs_max: expected a whole number of candidates to run at once (1 or more)" >&2
    exit 2
fi
if [ "$mode" != large ] && [ "$jobs_max" != 1 ]; then
    echo "JOBS=$jobs_max: only \`large\` mode runs candidates side by side (the others time them)" >&2
    exit 2
fi
if [ "$jobs_max" != 1 ]; then
    # Each candidate runs in its own process group (job control), which Ctrl-C at the terminal
    # does not reach: an interrupted run stops its candidates itself.
    set -m
    trap 'for job in $(jobs -p); do kill -- "-$job" 2>/dev/null; done; exit 130' INT TERM
fi
if [ "$mode" = noise ]; then
    out=docs/data/fidelity_noise
fi
if [ "$mode" = late ]; then
    out=docs/data/fidelity_late
fi
if [ "$mode" = large ]; then
    : "${LARGE_REFERENCE:?large: set LARGE_REFERENCE to the A_large reference table (CSV)}"
    out=docs/data/fidelity_large/$(basename "$LARGE_REFERENCE" .csv)
    large=0
    large_train=0
fi
want() {  # want SECTION: is this section of the candidates run in this mode?
    [ "$mode" = all ] || [ "$mode" = "$1" ] || { [ "$mode" = large ] && [ "$1" != reference ]; }
}
# The training candidates' protocols (docs/fidelity/index.md, "The candidates").
fields='"epochs": 1, "schedule": "onecycle", "precision": "fp32", "test_images": 2000'
images16k="{\"name\": \"images16k\", $fields, \"lr\": 0.005, \"batch_size\": 64,
    \"checkpoints_per_epoch\": 2, \"train_images\": 16000, \"val_images\": 6000,
    \"filters\": [8, 16], \"fc_units\": 128}"
data4k="$fields, \"lr\": 0.005, \"batch_size\": 32, \"checkpoints_per_epoch\": 1,
    \"train_images\": 4000, \"val_images\": 6000"
val6k="{\"name\": \"cheap-val6k\", $data4k, \"filters\": [8, 16], \"fc_units\": 128}"
# cheap-val6k's data at ref16's width (filters 16 and 32, a 256-unit classifier).
wide4k="{\"name\": \"wide4k\", $data4k, \"filters\": [16, 32], \"fc_units\": 256}"
ref32='{"name": "ref32", "epochs": 1, "lr": 0.002, "schedule": "onecycle", "batch_size": 128,
        "checkpoints_per_epoch": 4, "filters": [32, 64], "fc_units": 1024, "precision": "bf16"}'

mkdir -p "$out"
reference=()
if [ -n "${LARGE_REFERENCE:-}" ]; then reference=(--large-reference "$LARGE_REFERENCE"); fi
bench() {  # bench NAME ARGS...: one candidate (in the background while JOBS allows)
    local name=$1; shift
    local run=("$py" experiments/bench_fidelity.py --small "$@" "${reference[@]}" --out "$out/$name.json")
    if [ "$jobs_max" = 1 ]; then
        "${run[@]}" | tail -n 1
        return
    fi
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do reap; done
    "${run[@]}" | tail -n 1 &
}
reap() {  # wait for one background candidate; stop the script if it failed; 127: none left
    local rc=0
    wait -n || rc=$?
    if [ "$rc" != 0 ] && [ "$rc" != 127 ]; then
        echo "fidelity_candidates.sh: a candidate failed (exit $rc)" >&2
        exit "$rc"
    fi
    return "$rc"
}

if want scores; then
    for score in synflow naswot jacob_cov snip grad_norm zico meco params macs; do
        bench "$score" --score "$score" --large "$large" --threads 1,2
    done
    # The vote's members are the best three single scores on MNIST, so its Fashion-MNIST
    # figures are the held-out ones; Abdelfattah et al.'s published vote is chosen on neither.
    bench vote_mnist_top3 --score synflow+naswot+jacob_cov --large "$large" --threads 1,2
    bench vote_abdelfattah --score synflow+jacob_cov+snip --large "$large" --threads 1,2
    # MeCo, added later, in the MNIST top three's votes: neither beat vote_mnist_top3 on MNIST.
    bench vote_synflow_naswot_meco --score synflow+naswot+meco --large "$large" --threads 1,2
    bench vote_synflow_naswot_jacob_cov_meco --score synflow+naswot+jacob_cov+meco --large "$large" --threads 1,2
    for fit in mnist fashion_mnist; do
        bench "model_fit_$fit" --score model:synflow+naswot+jacob_cov+zico+params --fit-on "$fit" \
            --large "$large" --threads 1,2
    done
fi

if want training; then
    cache=(--cache-path reward_tables/evaluations/fidelity_small.sqlite)
    vote=synflow+naswot+jacob_cov
    timed=(--large "$large_train" --threads 1,2)
    bench cheap_val --protocol cheap "${cache[@]}" "${timed[@]}"
    bench cheap_plus_vote --protocol cheap --with-scores "$vote" "${cache[@]}" "${timed[@]}"
    # The same training runs read another way: each costs what its protocol's row above says.
    bench cheap_tse --protocol cheap --signal tse "${cache[@]}"
    # Not on the A_large set (`large`): 1.5 to 6 times cheap's cost per cell, and below the
    # hybrid on both A_small tables.
    if [ "$mode" != large ]; then
        bench images16k_val --protocol "$images16k" "${cache[@]}" "${timed[@]}"
        bench cheap-val6k_val --protocol "$val6k" "${cache[@]}" "${timed[@]}"
        bench images16k_tse --protocol "$images16k" --signal tse "${cache[@]}"
        bench images16k_plus_vote --protocol "$images16k" --with-scores "$vote" "${cache[@]}"
        # Is the narrow network, not the few images, what keeps cheap from ranking like fast?
        # Thought of after the A_large set's first rows, so it is not one of the default rule's
        # candidates (and not in `large`).
        bench wide4k_val --protocol "$wide4k" "${cache[@]}" "${timed[@]}"
    fi
fi

if want reference; then
    # A candidate reference protocol for the A_large reference set (it must rank the
    # Fashion-MNIST A_small cells like fast, Spearman >= 0.9): fast's schedule and data at a
    # quarter of its width; Fashion-MNIST only.
    ref16='{"name": "ref16", "epochs": 1, "lr": 0.002, "schedule": "onecycle", "batch_size": 128,
            "checkpoints_per_epoch": 4, "filters": [16, 32], "fc_units": 256, "precision": "fp32"}'
    bench ref16_val --protocol "$ref16" --dataset fashion_mnist --cache-path reward_tables/evaluations/fidelity_small.sqlite
    # Half of fast's width (a quarter of its classifier), in bf16 autocast (its A_large rows'
    # recorded training times are in docs/fidelity/large-reference.md).
    bench ref32_val --protocol "$ref32" --dataset fashion_mnist --cache-path reward_tables/evaluations/fidelity_small.sqlite
    # As the reference set uses it: its second seed, and the two seeds' mean.
    bench ref32_seed1_val --protocol "$ref32" --dataset fashion_mnist --train-seeds 1 \
        --cache-path reward_tables/evaluations/fidelity_small.sqlite
    bench ref32_seeds01_val --protocol "$ref32" --dataset fashion_mnist --train-seeds 0,1 \
        --cache-path reward_tables/evaluations/fidelity_small.sqlite
fi
if [ "$mode" = late ]; then
    # loss12k: loss16k on 12,000 images, the next multiple of 4,000 below loss16k's cost
    # (nas_env.protocols.PROTOCOLS["loss12k"]; these fields, so these runs' identities).
    loss12k='{"name": "loss12k", "epochs": 1, "schedule": "onecycle", "precision": "fp32",
        "test_images": 2000, "lr": 0.005, "batch_size": 64, "checkpoints_per_epoch": 1,
        "loss_points_per_epoch": 2, "signal": "late_loss", "train_images": 12000,
        "val_images": 2000, "filters": [8, 16], "fc_units": 128}'
    # Seconds only, no cache (the runs above are not read), on idle cores: one after another.
    for timed in cheap loss16k loss12k; do
        proto=$timed
        if [ "$timed" = loss12k ]; then proto=$loss12k; fi
        "$py" experiments/bench_fidelity.py --protocol "$proto" --large 5 --threads 1,2 \
            --dataset fashion_mnist --out "$out/timing_$timed.json" | tail -n 1
    done
    cache=(--cache-path reward_tables/evaluations/fidelity_small.sqlite)
    # cheap's seed 0 beside them (cached runs), so that large_default.py can compare the groups.
    bench cheap_seed0 --protocol cheap "${cache[@]}"
    bench images16k_late_seed0 --protocol "$images16k" --signal late "${cache[@]}"
    bench images16k_late --protocol "$images16k" --signal late "${cache[@]}" --train-seeds 0,1
    bench loss12k_seed0 --protocol "$loss12k" "${cache[@]}" & seed0=$!
    bench loss12k_seed1 --protocol "$loss12k" "${cache[@]}" --train-seeds 1 & seed1=$!
    wait "$seed0"
    wait "$seed1"
    bench loss12k --protocol "$loss12k" "${cache[@]}" --train-seeds 0,1   # lookups
    # loss12k's A_small runs, both seeds, as the shipped reward tables.
    for dataset in mnist fashion_mnist; do
        "$py" experiments/export_cache.py "${cache[@]}" --dataset "$dataset" --protocol loss12k \
            --out-dir reward_tables
    done
    "$py" experiments/fidelity_table.py "$out"
    exit 0
fi
if [ "$mode" = noise ]; then
    # Seeds 0 and 1 of each training candidate: the second seed is trained here (64 cells per
    # table, 3 s (cheap) to 20 s (images16k) each on one thread), the first is in the cache.
    # cheap and images16k are also ranked on the A_large set's cells (both seeds; images16k's
    # 120 runs cost about 45 s each on one thread of a 2-core AMD EPYC with AVX-512); the others
    # are not, being below images16k on the A_small tables.
    cache=(--cache-path reward_tables/evaluations/fidelity_small.sqlite --train-seeds 0,1)
    bench cheap --protocol cheap "${cache[@]}"
    bench images16k --protocol "$images16k" "${cache[@]}"
    # Its seed 0 alone, as cheap's seed 0 is in `large` mode's figures.
    bench images16k_seed0 --protocol "$images16k" --cache-path reward_tables/evaluations/fidelity_small.sqlite
    reference=()
    bench ref32 --protocol "$ref32" --dataset fashion_mnist "${cache[@]}"
    bench cheap-val6k --protocol "$val6k" "${cache[@]}"
    bench wide4k --protocol "$wide4k" "${cache[@]}"
    "$py" experiments/fidelity_table.py --noise "$out"
    exit 0
fi
while reap; do :; done   # the candidates still running
"$py" experiments/fidelity_table.py "$out"
