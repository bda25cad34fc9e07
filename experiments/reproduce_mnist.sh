#!/usr/bin/env bash
# Re-measure every search figure of the MNIST A_small results (docs/results/mnist-table.md,
# docs/results/experiments-1-2.md, docs/results/search-baselines.md) on the shipped MNIST table,
# and redraw their figures (docs/figures/exp1_small_rval.png, exp2_small_rparam.png,
# compare_search_mnist.png).
#
#     bash experiments/reproduce_mnist.sh [OUT_DIR]       # default OUT_DIR: runs/mnist
#
# Runs, in order: the cell report (best 5, seed spread, feasible cells), experiments 1 and 2 with
# ten seeds each (plus ten more r_param seeds and the penalty-to-floor variant), the search
# comparison, then the three figures. About 5 minutes on an idle 2-core CPU. Each experiment prints its
# aggregate; the per-run folders and aggregate.json files are under OUT_DIR/<experiment>/.
# Set PYTHON to choose the interpreter (default: python).
set -euo pipefail

out=${1:-runs/mnist}
py=${PYTHON:-python}
figures=docs/figures
mkdir -p "$out" "$figures"

echo "== cells"
"$py" experiments/report_cells.py --top 5
"$py" experiments/report_cells.py --feasible

echo "== experiment 1: r_val"
"$py" experiments/train_ppo.py --seeds 0-9 --iterations 200 --no-progress --out-dir "$out/exp1"
echo "== experiment 2: r_param"
"$py" experiments/train_ppo.py --seeds 0-9 --iterations 200 --reward param --no-progress \
    --out-dir "$out/exp2"
echo "== experiment 2: r_param, ten more seeds"
"$py" experiments/train_ppo.py --seeds 10-19 --iterations 200 --reward param --no-progress \
    --out-dir "$out/exp2_more_seeds"
echo "== experiment 2: r_param, penalty-to-floor"
"$py" experiments/train_ppo.py --seeds 0-9 --iterations 200 --reward param \
    --reward-transform penalty-to-floor --no-progress --out-dir "$out/exp2_floor"

echo "== search comparison"
"$py" experiments/compare_search.py --out-dir "$out/compare"

echo "== figures"
"$py" experiments/plot_rewards.py "$out/exp1" --aggregate --ylim 80 100 \
    --title "Experiment 1: A_small, r_val, 10 seeds" --out "$figures/exp1_small_rval.png"
"$py" experiments/plot_rewards.py "$out/exp2" --aggregate \
    --title "Experiment 2: A_small, r_param (n = 150,000 cell parameters), 10 seeds" --out "$figures/exp2_small_rparam.png"
cp "$(ls -d "$out"/compare/*/ | tail -n 1)regret.png" "$figures/compare_search_mnist.png"
echo "figures written to $figures/"
