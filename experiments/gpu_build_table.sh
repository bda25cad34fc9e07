#!/usr/bin/env bash
# Fill an A_small reward table on a GPU machine: every cell, seeds 0 and 1, under PROTOCOL (default
# fast) in PRECISION (default fp32, as the shipped Fashion-MNIST table), with several builders
# sharing the GPU, starting from the table in reward_tables/ (where there is one). Run it from the
# repository root of the GPU machine:
#
#     bash experiments/gpu_build_table.sh fashion_mnist              # or mnist
#     PROTOCOL=paper bash experiments/gpu_build_table.sh mnist       # the paper's 10 epochs
#
# and add the rows it built to the table of another checkout with
#
#     python experiments/merge_table.py gpu_results/table/small_fashion_mnist_fast.csv \
#         --into reward_tables/small_fashion_mnist_fast.csv
#
# The table is built in $OUT/table/ (default gpu_results/table/), the builders' output goes to
# $OUT/builders.log. The builders work through the same cells: each skips a (cell, seed) that the
# table has or that another builder is training (its checkpoint lock), so they share the work like
# a queue. Every finished row is written atomically the moment it is done; Ctrl-C (or TIME_LIMIT
# seconds; default 0, no limit) stops the builders, each saving its run in training to
# $OUT/checkpoints/, and running the same command again resumes where they stopped. Set BUILDERS
# (default 6), TIME_LIMIT, DEVICE (default cuda), PROTOCOL, PRECISION and PYTHON; a machine
# without network access gets the dataset and the packages from gpu_offline_kit.sh.
set -uo pipefail

dataset=${1:-fashion_mnist}
builders=${BUILDERS:-6}
limit=${TIME_LIMIT:-0}
protocol=${PROTOCOL:-fast}
stem=small_${dataset}_${protocol}

source "$(dirname "$0")/gpu_setup.sh"  # out, py, PYTHONPATH, NAS_ENV_DATA (and the kit's wheels)
table=$out/table
mkdir -p "$table"
if [ ! -f "$table/$stem.csv" ]; then
    cp "reward_tables/$stem.csv" "reward_tables/$stem.json" "$table/" 2>/dev/null || true
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true

run_builders "$builders" "$limit" "$py" experiments/build_reward_table.py --dataset "$dataset" \
    --protocol "$protocol" --archs 0-63 --seeds 0,1 --precision "${PRECISION:-fp32}" \
    --device "${DEVICE:-cuda}" --threads 2 --out-dir "$table" --checkpoint-dir "$out/checkpoints"
grep -h "validation" "$out/builders.log" | tail -n 5
"$py" -c "import pandas as pd; t = pd.read_csv('$table/$stem.csv'); print(f'{len(t)} rows of 128;', t.groupby('device').size().to_dict())"
