# Sourced by device_build_table.sh and device_exp3.sh on a lent GPU machine: sets out (from $OUT)
# and py (from $PYTHON, default python3), installs the wheels device_kit.sh packed into
# .device/whl, and points PYTHONPATH at them and at the checkout, NAS_ENV_DATA at .device/data.
out=${OUT:?"OUT: the folder whose files come back (the device tool sets it)"}
py=${PYTHON:-python3}
if ls .device/whl/*.whl >/dev/null 2>&1; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/nas_env_site .device/whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/nas_env_site:$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export NAS_ENV_DATA=${NAS_ENV_DATA:-$PWD/.device/data}
