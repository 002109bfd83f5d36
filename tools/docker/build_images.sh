#!/usr/bin/env bash
# Build the docker test group's images offline (no registry, no network inside `docker build`).
#   tools/docker/build_images.sh [base|deps|standin|project|all]   (default all)
# Each image carries a label io.tracr.content-hash computed from what it is built from; when an
# image with that tag and hash exists the build is skipped (a warm run takes seconds).
#   tracr-base:bookworm   debootstrap minbase + python3, python3-venv, tini, imported with `docker import`
#   tracr-deps:latest     the base + /opt/venv with tracr's pinned dependencies, from a host wheelhouse
#   tracr-vllm-standin    the stand-in vLLM server (tracr.testing.fake_vllm) behind tini; takes `vllm serve` args
#   tracr:latest          deployments/Dockerfile on tracr-deps (the Docker work pool's image)
# Work files: build/docker/ (gitignored). Needs root, docker, debootstrap.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
WORK=${TRACR_DOCKER_BUILD_DIR:-$ROOT/build/docker}
PY=${PYTHON:-python3}
[[ -x .venv/bin/python ]] && PY=${PYTHON:-.venv/bin/python}
SUITE=bookworm
BASE_PACKAGES=python3,python3-venv,tini,ca-certificates
BASE_IMAGE=tracr-base:$SUITE
DEPS_IMAGE=tracr-deps:latest
STANDIN_IMAGE=${TRACR_STANDIN_IMAGE:-tracr-vllm-standin:latest}
PROJECT_IMAGE=${TRACR_PROJECT_IMAGE:-tracr:latest}
mkdir -p "$WORK"
log() { printf '[build_images %s] %s\n' "$(date +%T)" "$*" >&2; }
hash_of() { sha256sum | cut -c1-16; }
label_of() { docker image inspect --format '{{index .Config.Labels "io.tracr.content-hash"}}' "$1" 2>/dev/null || true; }
fresh() { [[ "$(label_of "$1")" == "$2" ]]; }
id_of() { docker image inspect --format '{{.Id}}' "$1"; }
# The legacy builder (buildx is not packaged); its deprecation notice is dropped, errors are kept.
dbuild() {
  { DOCKER_BUILDKIT=0 docker build -q --force-rm --network none "$@" 2>&1 1>/dev/null; } \
    | { grep -v -E 'DEPRECATED: The legacy builder|BuildKit is currently disabled|^ +environment-variable\.$|^$' >&2 || true; }
}

# The Debian mirror apt already uses (deb822 sources or a classic sources.list).
mirror() {
  local m
  m=$(grep -h -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v -- '-security' | head -1 || true)
  [[ -n $m ]] || m=$(grep -h -E '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}' | grep debian | grep -v security | head -1 || true)
  echo "${m:-http://deb.debian.org/debian}"
}

build_base() {
  local m h dir
  m=$(mirror)
  h=$(printf '%s|%s|%s|minbase|v1' "$SUITE" "$m" "$BASE_PACKAGES" | hash_of)
  if fresh "$BASE_IMAGE" "$h"; then log "$BASE_IMAGE up to date ($h)"; return; fi
  dir=$WORK/rootfs-$SUITE
  rm -rf "$dir"
  log "debootstrap $SUITE from $m (+$BASE_PACKAGES)"
  debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$dir" "$m" > "$WORK/debootstrap.log" 2>&1 \
    || { tail -30 "$WORK/debootstrap.log" >&2; exit 1; }
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  tar -C "$dir" -c . | docker import \
    --change "LABEL io.tracr.content-hash=$h" --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$dir"
  log "$BASE_IMAGE imported"
}

# tracr's runtime dependencies, pinned to what the host's .venv resolved, as wheels on the host.
wheelhouse() {
  local req=$WORK/requirements.txt
  # only tracr's own closure: the host venv's test and scoring tools (some need a newer Python than bookworm's) stay out
  "$PY" tools/docker/runtime_requirements.py tracr | grep -v -i -E '^(setuptools|wheel|pip)==' > "$req.new"
  # setuptools/wheel: the editable install builds without isolation (offline)
  printf 'setuptools>=68\nwheel\n' >> "$req.new"
  # bookworm's Python is 3.11.2: markers for python_full_version < 3.11.3 pull in what the host did not need
  printf 'async-timeout>=4.0.3\n' >> "$req.new"
  mv "$req.new" "$req"
  local h; h=$(cat "$req" | hash_of)
  if [[ -f $WORK/wheelhouse/.hash && "$(cat "$WORK/wheelhouse/.hash")" == "$h" ]]; then return; fi
  log "wheelhouse: pip wheel $(wc -l < "$req") requirements on the host"
  mkdir -p "$WORK/wheelhouse"
  "$PY" -m pip wheel -q --no-deps -r "$req" -w "$WORK/wheelhouse" > "$WORK/wheelhouse.log" 2>&1 || { tail -30 "$WORK/wheelhouse.log" >&2; exit 1; }
  echo "$h" > "$WORK/wheelhouse/.hash"
}

build_deps() {
  build_base
  wheelhouse
  local ctx=$WORK/ctx-deps h
  rm -rf "$ctx"; mkdir -p "$ctx"
  cp tools/docker/deps.Dockerfile "$ctx/Dockerfile"
  cp "$WORK/requirements.txt" "$ctx/"
  h=$( (id_of "$BASE_IMAGE"; cat "$ctx/Dockerfile" "$ctx/requirements.txt") | hash_of)
  if fresh "$DEPS_IMAGE" "$h"; then log "$DEPS_IMAGE up to date ($h)"; return; fi
  ln "$WORK"/wheelhouse/*.whl "$ctx/" 2>/dev/null || cp "$WORK"/wheelhouse/*.whl "$ctx/"
  mkdir -p "$ctx/wheels"; mv "$ctx"/*.whl "$ctx/wheels/"
  log "docker build $DEPS_IMAGE"
  dbuild --build-arg BASE="$BASE_IMAGE" --label "io.tracr.content-hash=$h" -t "$DEPS_IMAGE" "$ctx"
  rm -rf "$ctx"
}

# A tracr wheel (no dependencies) for the stand-in image.
tracr_wheel() {
  rm -rf "$WORK/tracr-wheel"; mkdir -p "$WORK/tracr-wheel"
  "$PY" -m pip wheel -q --no-deps -w "$WORK/tracr-wheel" . > "$WORK/tracr-wheel.log" 2>&1 || { tail -20 "$WORK/tracr-wheel.log" >&2; exit 1; }
}

build_standin() {
  build_base
  local ctx=$WORK/ctx-standin h
  rm -rf "$ctx"; mkdir -p "$ctx/wheels"
  cp tools/docker/standin/Dockerfile "$ctx/Dockerfile"
  # only the stand-in's own dependencies: starlette and uvicorn (pinned as on the host)
  "$PY" -m pip freeze --all 2>/dev/null | grep -i -E '^(starlette|uvicorn|anyio|h11|click|idna|sniffio|typing[_-]extensions)==' > "$ctx/requirements.txt"
  h=$( (id_of "$BASE_IMAGE"; cat "$ctx/Dockerfile" "$ctx/requirements.txt" tracr/testing/fake_vllm.py tracr/servers/openai_protocol.py) | hash_of)
  if fresh "$STANDIN_IMAGE" "$h"; then log "$STANDIN_IMAGE up to date ($h)"; rm -rf "$ctx"; return; fi
  "$PY" -m pip download -q --only-binary=:all: --no-deps -r "$ctx/requirements.txt" -d "$ctx/wheels" > "$WORK/standin-wheels.log" 2>&1 || { tail -20 "$WORK/standin-wheels.log" >&2; exit 1; }
  tracr_wheel; cp "$WORK"/tracr-wheel/*.whl "$ctx/wheels/"
  log "docker build $STANDIN_IMAGE"
  dbuild --build-arg BASE="$BASE_IMAGE" --label "io.tracr.content-hash=$h" -t "$STANDIN_IMAGE" "$ctx"
  rm -rf "$ctx"
}

build_project() {
  build_deps
  local h
  h=$( (id_of "$DEPS_IMAGE"; git ls-files -s pyproject.toml README.md tracr flows tasks blocks deployments dashboards job_configs; git diff HEAD -- pyproject.toml README.md tracr flows tasks blocks deployments dashboards job_configs) | hash_of)
  if fresh "$PROJECT_IMAGE" "$h"; then log "$PROJECT_IMAGE up to date ($h)"; return; fi
  log "docker build $PROJECT_IMAGE from deployments/Dockerfile"
  # The repository root is the context; .dockerignore-free, so keep the context small with a copy of the tracked files.
  local ctx=$WORK/ctx-project
  rm -rf "$ctx"; mkdir -p "$ctx"
  git ls-files -z -co --exclude-standard pyproject.toml README.md tracr flows tasks blocks deployments dashboards job_configs | xargs -0 cp --parents -t "$ctx"
  dbuild -f "$ctx/deployments/Dockerfile" \
    --build-arg BASE="$DEPS_IMAGE" --build-arg PIP_ARGS="--no-index --no-build-isolation" \
    --label "io.tracr.content-hash=$h" -t "$PROJECT_IMAGE" "$ctx"
  rm -rf "$ctx"
}

start=$(date +%s)
case "${1:-all}" in
base) build_base ;;
deps) build_deps ;;
standin) build_standin ;;
project) build_project ;;
all) build_base; build_standin; build_project ;;
*) echo "usage: $0 [base|deps|standin|project|all]" >&2; exit 2 ;;
esac
log "done in $(( $(date +%s) - start )) s"
