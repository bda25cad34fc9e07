#!/usr/bin/env bash
# Here, before a call of the device tool: put into .device/ (ignored by git; name it in the call's
# `carry`) what a bare GPU machine lacks for experiments/device_build_table.sh: the dataset's raw
# files (that machine reaches no network) and wheels of gymnasium and stable-baselines3 for its
# Python 3.12 (it has torch, torchvision, pandas, matplotlib, tensorboard, filelock and tqdm).
# Used by device_build_table.sh and device_exp3.sh.
#
#     bash experiments/device_kit.sh fashion_mnist          # or mnist; about 55 MB
#
# Reads the dataset from $NAS_ENV_DATA (default ../shared/datasets). Set PYTHON for the
# interpreter whose gymnasium version to match.
set -euo pipefail

dataset=${1:-fashion_mnist}
case "$dataset" in
    mnist) folder=MNIST ;;
    fashion_mnist) folder=FashionMNIST ;;
    *) echo "device_kit.sh: dataset '$dataset'; allowed: mnist, fashion_mnist" >&2; exit 2 ;;
esac
root=${NAS_ENV_DATA:-../shared/datasets}
py=${PYTHON:-python}
if ! ls "$root/$folder/raw/"*-ubyte >/dev/null 2>&1; then
    echo "device_kit.sh: no $root/$folder/raw/*-ubyte; set NAS_ENV_DATA to the data root" >&2
    exit 2
fi

grep -qxF '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
rm -rf .device
mkdir -p ".device/data/$folder/raw" .device/whl
cp "$root/$folder/raw/"*-ubyte ".device/data/$folder/raw/"
versions=$("$py" -c "import gymnasium, stable_baselines3 as sb3; print(gymnasium.__version__, sb3.__version__)")
read -r gymnasium sb3 <<< "$versions"
"$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 -d .device/whl "gymnasium==$gymnasium" farama-notifications \
    "stable-baselines3==$sb3"
du -sh .device
echo "now: run(command=\"bash experiments/device_build_table.sh $dataset\", carry=[\".device\"], timeout_s=540)"
echo "  or, with mnist, experiment 3: run(command=\"bash experiments/device_exp3.sh\", carry=[\".device\"], timeout_s=580)"
