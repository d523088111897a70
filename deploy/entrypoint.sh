#!/bin/sh
# Container entrypoint of synthspot (deploy/Dockerfile; Kubernetes passes only `args`).
#
# 1. PROMETHEUS_MULTIPROC_DIR: set (default /run/synthspot/metrics) and emptied before Python
#    starts, as prometheus_client's multiprocess mode requires: samples of an earlier run in the
#    same folder (a restarted container keeps its emptyDir) would otherwise be added to this one's.
# 2. For the commands that load a model (worker, score, demo, weights), weights baked into the
#    image (/opt/synthspot/weights) are linked into SYNTHSPOT_CACHE_DIR when that folder is
#    writable and lacks them, so a read-only root filesystem with an emptyDir
#    cache still finds them without a copy or a download.
# 3. Runs `synthspot ARGS...` (`worker`, `deliver`, `submit ...`); a first argument that is a
#    program on PATH (sh, python, synthspot) runs as given.
set -eu

: "${PROMETHEUS_MULTIPROC_DIR:=/run/synthspot/metrics}"
export PROMETHEUS_MULTIPROC_DIR
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
find "$PROMETHEUS_MULTIPROC_DIR" -mindepth 1 -maxdepth 1 -name '*.db' -type f -exec rm -f {} +

if [ "$#" -eq 0 ]; then
    set -- worker
fi

baked="${BAKED_WEIGHTS_DIR:-/opt/synthspot/weights}/weights"
cache="${SYNTHSPOT_CACHE_DIR:-}"
case "$1" in
    worker | score | demo | weights) wants_weights=1 ;;
    *) wants_weights=0 ;;
esac
if [ "$wants_weights" = 1 ] && [ -n "$cache" ] && [ -d "$baked" ]; then
    if mkdir -p "$cache/weights" 2>/dev/null && [ -w "$cache/weights" ]; then
        for file in "$baked"/*; do
            [ -e "$file" ] || continue
            target="$cache/weights/$(basename "$file")"
            [ -e "$target" ] || ln -s "$file" "$target"
        done
    else
        echo "entrypoint: $cache is not writable; weights baked into the image are not linked" >&2
    fi
fi

case "$1" in
    -*) exec synthspot "$@" ;;
esac
if command -v "$1" >/dev/null 2>&1; then
    exec "$@"
fi
exec synthspot "$@"
