#!/usr/bin/env bash
# Build the A_large reference set on a GPU machine: the 60 cells of
# reward_tables/large_reference_cells.csv on Fashion-MNIST, seeds 0 and 1, under PROTOCOL (default
# fast) in PRECISION (default bf16, as the shipped large_fashion_mnist_fast.csv), with several
# builders sharing the GPU. Run it from the repository root of the GPU machine:
#
#     bash experiments/gpu_build_large_reference.sh            # continue the shipped table
#     FRESH=1 bash experiments/gpu_build_large_reference.sh    # every row trained here
#
# and add the rows it built to the table of another checkout with
#
#     python experiments/merge_table.py gpu_results/table/large_fashion_mnist_fast.csv \
#         --into reward_tables/large_fashion_mnist_fast.csv
#
# The table is built in $OUT/table/ (default gpu_results/table/), starting from the shipped one
# unless FRESH=1; the builders' output goes to $OUT/builders.log. The builders share the cells like
# a queue (each skips a (cell, seed) that the table has or that another builder is training), write
# every finished row atomically, and train every cell with seed 0 before any with seed 1. Ctrl-C
# (or TIME_LIMIT seconds; default 0, no limit) stops them, each saving its run in training to
# CHECKPOINTS (default $OUT/checkpoints; each holds the run's weights and optimizer state), and the same command resumes.
# Set BUILDERS (default 8), THREADS (CPU threads per builder, default 2), TIME_LIMIT, CELLS,
# DEVICE (default cuda), PROTOCOL, PRECISION and PYTHON; a machine without network access gets the
# dataset and the packages from gpu_offline_kit.sh.
set -uo pipefail

builders=${BUILDERS:-8}
limit=${TIME_LIMIT:-0}
protocol=${PROTOCOL:-fast}
cells=${CELLS:-reward_tables/large_reference_cells.csv}

source "$(dirname "$0")/gpu_setup.sh"  # out, py, PYTHONPATH, NAS_ENV_DATA (and the kit's wheels)
table=$out/table
checkpoints=${CHECKPOINTS:-$out/checkpoints}
mkdir -p "$table"
stem=large_fashion_mnist_$protocol
if [ "${FRESH:-0}" != 1 ] && [ ! -f "$table/$stem.csv" ]; then
    cp "reward_tables/$stem.csv" "reward_tables/$stem.json" "$table/" 2>/dev/null || true
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true
start=$(date +%s)

run_builders "$builders" "$limit" "$py" experiments/build_large_reference.py --cells "$cells" \
    --protocol "$protocol" --seeds 0,1 --precision "${PRECISION:-bf16}" \
    --device "${DEVICE:-cuda}" --threads "${THREADS:-2}" --out-dir "$table" \
    --checkpoint-dir "$checkpoints"
echo "builders ran $(( $(date +%s) - start )) s"
grep -h "validation" "$out/builders.log" | tail -n 5
"$py" - "$table/$stem.csv" "$cells" <<'PY'
import sys
import pandas as pd
table, cells = pd.read_csv(sys.argv[1]), pd.read_csv(sys.argv[2])
print(f"{len(table)} rows of {2 * len(cells)};", table.groupby(["device", "seed"]).size().to_dict())
print("training_time (s) by device:", table.groupby("device")["training_time"].median().round(1).to_dict())
PY
