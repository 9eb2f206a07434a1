#!/usr/bin/env bash
# Installs what vmimage needs on a fresh Debian machine: qemu-img and a .venv at the repo root.
# Usage: scripts/install.sh [--test]   (--test adds the test dependencies: SDKs, CLI, pytest)
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v qemu-img >/dev/null 2>&1 || need_apt+=(qemu-utils)
command -v qemu-system-x86_64 >/dev/null 2>&1 || need_apt+=(qemu-system-x86)
# Image insight's reader is vmimage's own Python; it runs under prlimit (util-linux).
command -v prlimit >/dev/null 2>&1 || need_apt+=(util-linux)
if [ "${1:-}" = "--test" ]; then
  # The tests and benchmarks run a one-node OpenStack Swift with s3api (scripts/swift-s3.sh)
  # and two vmimage processes behind nginx (scripts/scale-out.sh); bench/scale_create.py's load
  # comes from wrk; the benchmarks measure upstream Glance side by side (scripts/glance-peer.sh).
  command -v swift-proxy-server >/dev/null 2>&1 || need_apt+=(swift swift-proxy swift-object swift-container swift-account)
  command -v glance-api >/dev/null 2>&1 || need_apt+=(glance-api)
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
  command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
  # The console's tests drive a real browser (Playwright, pip) and use Debian's, never a download.
  [ -x /usr/bin/chromium ] || need_apt+=(chromium)
  # Image insight's tests and bench/insight.py build real Debian roots (debootstrap) into ext4
  # images without mounting them (mke2fs -d).
  command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || need_apt+=(debootstrap)
  command -v mke2fs >/dev/null 2>&1 || [ -x /usr/sbin/mke2fs ] || [ -x /sbin/mke2fs ] || need_apt+=(e2fsprogs)
  # ... and XFS roots (CentOS, RHEL, openEuler, Rocky) with mkfs.xfs -p PROTOFILE, also unmounted.
  command -v mkfs.xfs >/dev/null 2>&1 || [ -x /usr/sbin/mkfs.xfs ] || [ -x /sbin/mkfs.xfs ] || need_apt+=(xfsprogs)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  if [[ " ${need_apt[*]} " == *" glance-api "* ]] && [ -d /run/systemd/system ]; then
    # Debian starts its packaged service on 0.0.0.0:9292 (vmimage's port); only the peer of
    # scripts/glance-peer.sh is wanted.
    $SUDO systemctl disable --now glance-api.service >/dev/null 2>&1 || true
  fi
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
extras=""; [ "${1:-}" = "--test" ] && extras="[test]"
stamp=".venv/.installed${extras}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/pip install -q --disable-pip-version-check -e ".${extras}"
  touch "$stamp"
fi
