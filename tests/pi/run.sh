#!/usr/bin/env bash
# Run Python on an emulated Raspberry Pi: Debian 12 (Raspberry Pi OS bookworm) arm64 Python 3.11,
# under qemu's user-mode emulation with the Pi 4's CPU (cortex-a72), with only the edge package's
# dependencies installed: tflite-runtime 2.14, numpy < 2, Pillow. No TensorFlow.
#
#   tests/pi/run.sh --setup                 build (or find) the cached environment
#   tests/pi/run.sh ARGS...                 run the emulated python3.11 ARGS (the repo is importable)
#   PI_SITE=litert tests/pi/run.sh ARGS...  the same with LiteRT's aarch64 wheel instead
#
# The cache lives in $LSTM_EDGE_PI_CACHE (default ~/.cache/lstm-edge/pi). Exit 77: cannot run here
# (no qemu-aarch64-static, or apt knows no arm64 packages), with the reason on stderr.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${LSTM_EDGE_PI_CACHE:-$HOME/.cache/lstm-edge/pi}"
root="$cache/root"
python="${PYTHON:-python3}"
debs=(python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libc6 zlib1g libexpat1 libffi8 libssl3
      libbz2-1.0 liblzma5 libstdc++6 libgcc-s1 libsqlite3-0 libuuid1 libncursesw6 libtinfo6 libreadline8 libcrypt1)
wheel_platforms=(--platform manylinux_2_34_aarch64 --platform manylinux_2_28_aarch64 --platform manylinux_2_27_aarch64
                 --platform manylinux2014_aarch64 --python-version 3.11 --implementation cp --only-binary=:all:)

skip() { echo "tests/pi: $*" >&2; exit 77; }

command -v qemu-aarch64-static >/dev/null || skip "qemu-aarch64-static not found (Debian: apt-get install qemu-user-static)"

if [ ! -x "$root/usr/bin/python3.11" ]; then
  dpkg --print-foreign-architectures | grep -qx arm64 ||
    skip "dpkg has no arm64 architecture (as root: dpkg --add-architecture arm64 && apt-get update)"
  mkdir -p "$cache/debs"
  (cd "$cache/debs" && apt-get download "${debs[@]/%/:arm64}" >/dev/null 2>&1) ||
    skip "apt-get download of the arm64 Python packages failed (run apt-get update after adding arm64)"
  rm -rf "$root.tmp" && mkdir -p "$root.tmp"
  for deb in "$cache"/debs/*.deb; do dpkg -x "$deb" "$root.tmp"; done
  mv "$root.tmp" "$root"
fi

install_site() {  # $1: folder, then the requirements
  local site="$1"; shift
  if [ ! -f "$site/.complete" ]; then
    rm -rf "$site"
    "$python" -m pip install --quiet --disable-pip-version-check --target "$site" "${wheel_platforms[@]}" "$@" \
      >"$cache/pip.log" 2>&1 || { cat "$cache/pip.log" >&2; exit 1; }
    touch "$site/.complete"
  fi
}
install_site "$cache/site-tflite-runtime" "tflite-runtime==2.14.0" "numpy<2" "pillow"
if [ "${PI_SITE:-tflite-runtime}" = litert ]; then
  install_site "$cache/site-litert" "ai-edge-litert==2.3.0" "numpy<2" "pillow"
fi

[ "${1:-}" = --setup ] && exit 0
export QEMU_CPU="${QEMU_CPU:-cortex-a72}" PYTHONPATH="$cache/site-${PI_SITE:-tflite-runtime}:$repo"
export PYTHONWARNINGS="ignore::UserWarning:numpy.core.getlimits"  # qemu flushes subnormals: harmless
exec qemu-aarch64-static -L "$root" "$root/usr/bin/python3.11" "$@"
