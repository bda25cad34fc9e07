#!/usr/bin/env bash
# Every figure of the Fashion-MNIST results (docs/results/fashion-mnist.md), from the shipped Fashion-MNIST table
# (reward_tables/small_fashion_mnist_fast.csv) and the MNIST one, and its figures
# (docs/figures/*fashion*.png).
#
#     bash experiments/reproduce_fashion.sh [OUT_DIR]      # default OUT_DIR: runs/fashion
#
# Runs, in order: the cell report of each table (best 5, seed spread, cells within noise, the
# r_param optimum), the transfer analysis (rank correlations, cross ranks, scatter plot),
# experiments 1 and 2 on Fashion-MNIST with the MNIST runs' seeds (10 for r_val, 20 for
# r_param), the search comparison on both tables and the seeds whose first hit they share, then
# the figures. About 5 minutes on an idle 2-core CPU.
# Set PYTHON to choose the interpreter (default: python).
set -euo pipefail

out=${1:-runs/fashion}
py=${PYTHON:-python}
figures=docs/figures
fashion=$("$py" -c "from nas_env.benchmark import table_path; print(table_path('fashion_mnist'))")
mkdir -p "$out" "$figures"

echo "== cells: MNIST"
"$py" experiments/report_cells.py --top 5
echo "== cells: Fashion-MNIST"
"$py" experiments/report_cells.py --top 5 --table-path "$fashion"

echo "== transfer: MNIST against Fashion-MNIST"
"$py" experiments/compare_tables.py --a mnist --b fashion_mnist \
    --figure "$figures/transfer_mnist_fashion_mnist.png" --json "$out/transfer.json"

echo "== experiment 1 on Fashion-MNIST: r_val"
"$py" experiments/train_ppo.py --dataset fashion_mnist --seeds 0-9 --iterations 200 \
    --no-progress --out-dir "$out/exp1"
echo "== experiment 2 on Fashion-MNIST: r_param"
"$py" experiments/train_ppo.py --dataset fashion_mnist --seeds 0-19 --iterations 200 \
    --reward param --no-progress --out-dir "$out/exp2"

echo "== search comparison on Fashion-MNIST, and on MNIST beside it"
"$py" experiments/compare_search.py --dataset fashion_mnist --out-dir "$out/compare"
"$py" experiments/compare_search.py --dataset mnist --out-dir "$out/compare_mnist"
echo "== seeds whose first hit is the same evaluation on both tables"
"$py" - "$out" <<'PY'
import glob, sys
import pandas as pd

out = sys.argv[1]
keys = ["method", "reward_kind", "seed"]
read = lambda folder: pd.read_csv(sorted(glob.glob(f"{out}/{folder}/*/first_hits.csv"))[-1])
both = read("compare").merge(read("compare_mnist"), on=keys, suffixes=("_fashion", "_mnist"))
same = both["first_hit_fashion"].fillna(-1) == both["first_hit_mnist"].fillna(-1)
print(same.groupby([both["method"], both["reward_kind"]]).agg(["sum", "size"])
      .rename(columns={"sum": "same", "size": "seeds"}).to_markdown())
PY

echo "== figures"
"$py" experiments/plot_rewards.py "$out/exp1" --aggregate \
    --title "Experiment 1 on Fashion-MNIST: A_small, r_val, 10 seeds" \
    --out "$figures/exp1_small_rval_fashion.png"
"$py" experiments/plot_rewards.py "$out/exp2" --aggregate \
    --title "Experiment 2 on Fashion-MNIST: A_small, r_param, 20 seeds" \
    --out "$figures/exp2_small_rparam_fashion.png"
cp "$(ls -d "$out"/compare/*/ | tail -n 1)regret.png" "$figures/compare_search_fashion.png"
echo "figures written to $figures/"
