#!/usr/bin/env bash
# On a lent GPU machine, in one call of the device tool: fill an A_small reward table (fast
# protocol, seeds 0 and 1, fp32) with several builders sharing the GPU, starting from the table
# in reward_tables/, and leave the table in $OUT for merge_table.py to add here.
#
#   here:   bash experiments/device_kit.sh fashion_mnist
#   device: run(command="bash experiments/device_build_table.sh fashion_mnist",
#               carry=[".device"], timeout_s=540)
#   here:   python experiments/merge_table.py FILES_AT/table/small_fashion_mnist_fast.csv \
#               --into reward_tables/small_fashion_mnist_fast.csv
#
# The builders work through the same cells: each skips a (cell, seed) that the table has or that
# another builder is training (its checkpoint lock), so they share the work like a queue. They
# stop after TIME_LIMIT seconds (default 420), keeping every row they finished (each is written
# atomically the moment it is done); the table then goes to $OUT/table/, their output to
# $OUT/builders.log. Set BUILDERS (default 6), TIME_LIMIT, DEVICE (default cuda) and PYTHON.
set -uo pipefail

dataset=${1:-fashion_mnist}
builders=${BUILDERS:-6}
limit=${TIME_LIMIT:-420}
stem=small_${dataset}_fast

source "$(dirname "$0")/device_env.sh"  # out, py, the wheels, PYTHONPATH, NAS_ENV_DATA
work=$(mktemp -d)
cp "reward_tables/$stem.csv" "reward_tables/$stem.json" "$work/" 2>/dev/null || true
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true

for i in $(seq 1 "$builders"); do
    timeout "$limit" "$py" experiments/build_reward_table.py --dataset "$dataset" --protocol fast \
        --archs 0-63 --seeds 0,1 --precision fp32 --device "${DEVICE:-cuda}" --threads 2 \
        --out-dir "$work" --checkpoint-dir "$work/checkpoints" > "$work/builder_$i.log" 2>&1 &
    sleep 3  # let each start before the next, so they do not all begin with the same cell
done
wait

mkdir -p "$out/table"
cp "$work/$stem.csv" "$work/$stem.json" "$out/table/"
for i in $(seq 1 "$builders"); do echo "== builder $i"; cat "$work/builder_$i.log"; done > "$out/builders.log"
grep -h "validation" "$out/builders.log" | tail -n 5
"$py" -c "import pandas as pd; t = pd.read_csv('$out/table/$stem.csv'); print(f'{len(t)} rows of 128;', t.groupby('device').size().to_dict())"
