#!/usr/bin/env bash
# For a GPU machine without network access: pack into gpu_kit/ (ignored by git) what it lacks for
# gpu_build_table.sh and gpu_exp3.sh: the dataset's raw files, and wheels of gymnasium and
# stable-baselines3 (at the versions this machine's interpreter has) for the GPU machine's
# Python, which is expected to have torch, torchvision, pandas, matplotlib, tensorboard, filelock
# and tqdm already. A GPU machine with network access needs no kit: pip install -e . there.
#
# On a machine with the dataset and network access, from the repository root:
#
#     bash experiments/gpu_offline_kit.sh fashion_mnist     # or mnist; about 35 MB
#
# then copy the checkout, gpu_kit/ included, to the GPU machine; gpu_setup.sh (sourced by the GPU
# scripts) installs the wheels and points NAS_ENV_DATA at the kit's data.
#
# Reads the dataset from $NAS_ENV_DATA (default ../shared/datasets). Set PYTHON for the
# interpreter whose gymnasium and stable-baselines3 versions to match, KIT for another folder,
# and GPU_PYTHON_VERSION for the GPU machine's Python (default 3.12; Linux x86-64 wheels).
set -euo pipefail

dataset=${1:-fashion_mnist}
case "$dataset" in
    mnist) folder=MNIST ;;
    fashion_mnist) folder=FashionMNIST ;;
    *) echo "gpu_offline_kit.sh: dataset '$dataset'; allowed: mnist, fashion_mnist" >&2; exit 2 ;;
esac
root=${NAS_ENV_DATA:-../shared/datasets}
py=${PYTHON:-python}
kit=${KIT:-gpu_kit}
if ! ls "$root/$folder/raw/"*-ubyte >/dev/null 2>&1; then
    echo "gpu_offline_kit.sh: no $root/$folder/raw/*-ubyte; set NAS_ENV_DATA to the data root" >&2
    exit 2
fi

rm -rf "$kit"
mkdir -p "$kit/data/$folder/raw" "$kit/whl"
for f in "$root/$folder/raw/"*-ubyte; do  # gzipped: 30 MB instead of 55
    gzip -c "$f" > "$kit/data/$folder/raw/$(basename "$f").gz"
done
versions=$("$py" -c "import gymnasium, stable_baselines3 as sb3; print(gymnasium.__version__, sb3.__version__)")
read -r gymnasium sb3 <<< "$versions"
"$py" -m pip download -q --no-deps --only-binary=:all: --python-version "${GPU_PYTHON_VERSION:-3.12}" \
    --implementation cp --platform manylinux2014_x86_64 -d "$kit/whl" "gymnasium==$gymnasium" \
    farama-notifications "stable-baselines3==$sb3"
du -sh "$kit"
echo "now copy the checkout with $kit/ to the GPU machine and run there, from its root:"
echo "  bash experiments/gpu_build_table.sh $dataset"
echo "  or, with mnist, experiment 3: bash experiments/gpu_exp3.sh"
