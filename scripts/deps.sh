#!/usr/bin/env bash
# deps.sh GROUP... - installs the Debian packages a group needs, only those missing.
#   build: compile the library and the CLI      test: run the tests, sanitizers and fuzzers
#   cross: cross-compile for aarch64 and run its kernel tests under qemu-user (adds the arm64
#          architecture to dpkg for the arm64 cmocka)
# Uses sudo when not root. Prints what it installs; silent when nothing is missing.
set -euo pipefail

pkgs_build=(gcc make cmake pkg-config libpcre2-dev libjansson-dev libcurl4-openssl-dev libssl-dev)
pkgs_test=(libcmocka-dev clang libclang-rt-dev python3 python3-jinja2)
pkgs_cross=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user libcmocka-dev:arm64)

want=()
for group in "$@"; do
  case "$group" in
    build) want+=("${pkgs_build[@]}") ;;
    test) want+=("${pkgs_build[@]}" "${pkgs_test[@]}") ;;
    cross) want+=("${pkgs_build[@]}" "${pkgs_cross[@]}") ;;
    *) echo "deps.sh: unknown group '$group'" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps.sh: installing ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps.sh: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
# arm64 packages (the cross group's) install through multiarch, which dpkg must know of first.
if printf '%s\n' "${missing[@]}" | grep -q ':arm64$' && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  "${sudo[@]}" dpkg --add-architecture arm64
  "${sudo[@]}" apt-get update >&2
fi
if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
  "${sudo[@]}" apt-get update >&2
  "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >&2
fi
