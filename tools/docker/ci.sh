#!/usr/bin/env bash
# CI for the docker group (docs/containers.md): install the engine and the image tools (apt), start
# dockerd, build the images offline (cached by content hash: seconds when nothing changed), run
# `python -m pytest -q -m docker tests/docker`, and stop the engine on every exit.
# Run from the repository root with the project's .venv active (as .ci/run leaves it), as root.
# Cold (no images, empty build/docker): ~5-6 min of builds + ~4 min of tests on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1
[[ -n ${VIRTUAL_ENV:-} ]] || . .venv/bin/activate
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
[[ -x /usr/bin/tini ]] || need+=(tini)
if ((${#need[@]})); then
  echo "[docker ci] apt-get install ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
started_here=0
if ! bash tools/docker/engine.sh status >/dev/null 2>&1; then
  bash tools/docker/engine.sh start
  started_here=1
fi
cleanup() { if ((started_here)); then bash tools/docker/engine.sh stop || true; fi; }
trap cleanup EXIT
bash tools/docker/build_images.sh all
TRACR_DOCKER=1 python -m pytest -q -m docker tests/docker
