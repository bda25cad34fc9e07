# Sourced by the gpu_*.sh scripts, from the repository root of the GPU machine:
#
#   out   the folder the results go to: $OUT, default gpu_results/ (created);
#   py    the interpreter: $PYTHON, default python3;
#   PYTHONPATH  gets the checkout, so the scripts import this nas_env without an install;
#   and, where gpu_offline_kit.sh packed a kit into $KIT (default gpu_kit/): the kit's wheels are
#   installed into /tmp/nas_env_site (put first on PYTHONPATH), and, unless NAS_ENV_DATA is set
#   already, the kit's gzipped dataset is unpacked into /tmp/nas_env_data and NAS_ENV_DATA points there.
#
# Without a kit, the machine needs the dependencies installed (pip install -e .) and the dataset
# under $NAS_ENV_DATA or downloadable by torchvision.
out=${OUT:-$PWD/gpu_results}
mkdir -p "$out"
out=$(cd "$out" && pwd)
py=${PYTHON:-python3}
kit=${KIT:-gpu_kit}
if ls "$kit"/whl/*.whl >/dev/null 2>&1; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/nas_env_site "$kit"/whl/*.whl || exit 1
    export PYTHONPATH=/tmp/nas_env_site:$PWD${PYTHONPATH:+:$PYTHONPATH}
else
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
if [ -d "$kit/data" ] && [ -z "${NAS_ENV_DATA:-}" ]; then
    if ls "$kit"/data/*/raw/*-ubyte.gz >/dev/null 2>&1; then
        # Gzipped files: unpack them into torchvision's layout outside the checkout, each
        # through a temporary file, so an interrupted unpack leaves no truncated file behind.
        for f in "$kit"/data/*/raw/*-ubyte.gz; do
            dest=/tmp/nas_env_data/${f#"$kit"/data/}
            dest=${dest%.gz}
            mkdir -p "$(dirname "$dest")"
            [ -f "$dest" ] || { gunzip -c "$f" > "$dest.part" && mv "$dest.part" "$dest"; } || exit 1
        done
        export NAS_ENV_DATA=/tmp/nas_env_data
    else  # a kit packed before the files were gzipped
        export NAS_ENV_DATA=$(cd "$kit/data" && pwd)
    fi
fi
export PYTHONUNBUFFERED=1

# run_builders N LIMIT COMMAND...: N copies of COMMAND (a table builder) side by side, each under
# `timeout LIMIT` (0: no limit) and logging to $out/builder_<i>.log, started 3 s apart so they do
# not all begin with the same cell; Ctrl-C reaches each as SIGTERM (it saves its run). Their logs
# end up in $out/builders.log.
run_builders() {
    local n=$1 limit=$2 i pid
    shift 2
    local pids=()
    for i in $(seq 1 "$n"); do
        timeout "$limit" "$@" > "$out/builder_$i.log" 2>&1 &
        pids+=("$!")
        sleep 3
    done
    # Background jobs of a script ignore Ctrl-C, so pass it on as SIGTERM.
    trap 'kill -TERM "${pids[@]}" 2>/dev/null' INT TERM
    for pid in "${pids[@]}"; do
        while kill -0 "$pid" 2>/dev/null; do wait "$pid"; done
    done
    trap - INT TERM
    for i in $(seq 1 "$n"); do echo "== builder $i"; cat "$out/builder_$i.log"; done > "$out/builders.log"
    rm -f "$out"/builder_*.log
}
